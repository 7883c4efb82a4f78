package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// bashCompletion asks stack itself for the candidates: urfave/cli answers
// `--generate-bash-completion` (EnableBashCompletion) with the subcommands, or with all the
// flags when the word before it is "-" (a partial flag such as --wa would fail to parse, so the
// script passes "-" and lets compgen filter). After "--" stack would take
// --generate-bash-completion as an argument and run the command, so the script offers nothing.
const bashCompletion = `# bash completion for stack; load it with: source <(stack completion bash)
_stack_complete() {
  COMPREPLY=()
  local cur=${COMP_WORDS[COMP_CWORD]}
  local args=("${COMP_WORDS[@]:1:COMP_CWORD-1}") w
  for w in "${args[@]}"; do [[ $w == -- ]] && return 0; done
  if [[ $cur == -* ]]; then args+=(-); fi
  local candidates
  candidates=$("${COMP_WORDS[0]}" "${args[@]}" --generate-bash-completion 2>/dev/null)
  COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
}
complete -o bashdefault -o default -F _stack_complete stack
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or fish)",
		ArgsUsage: "bash|fish",
		Description: "Examples:\n" +
			"   source <(stack completion bash)                          # this shell\n" +
			"   stack completion bash > /etc/bash_completion.d/stack     # every new shell\n" +
			"   stack completion fish > ~/.config/fish/completions/stack.fish",
		Action: func(c *cli.Context) error {
			return printCompletion(c.App, c.Args().First(), c.App.Writer)
		},
	}
}

func printCompletion(app *cli.App, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(w, bashCompletion)
		return err
	case "fish":
		script, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("render fish completion: %w", err)
		}
		_, err = io.WriteString(w, script)
		return err
	default:
		return usageError{fmt.Errorf("completion: want bash or fish, not %q", shell)}
	}
}
