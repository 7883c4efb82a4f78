package spec

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// Options says which stack file(s) to load and how, mirroring Compose's global flags.
type Options struct {
	Files            []string // -f, in order; empty means the default names in the working directory
	ProjectName      string   // -p
	ProjectDirectory string   // --project-directory
	EnvFiles         []string // --env-file
	Profiles         []string // --profile
	// Environ is the process environment used for interpolation; nil means os.Environ().
	Environ []string
}

// LoadProject loads and merges the files through compose-go and returns its project, before
// conversion to stack's model. It is what `stack config` prints.
func LoadProject(ctx context.Context, opts Options) (*types.Project, error) {
	env := opts.Environ
	if env == nil {
		env = os.Environ()
	}
	po, err := cli.NewProjectOptions(opts.Files,
		cli.WithName(opts.ProjectName),
		cli.WithWorkingDirectory(opts.ProjectDirectory),
		cli.WithEnv(env),
		cli.WithEnvFiles(opts.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithProfiles(opts.Profiles),
	)
	if err != nil {
		return nil, fmt.Errorf("load stack file: %w", err)
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("load stack file: %w", err)
	}
	return p, nil
}
