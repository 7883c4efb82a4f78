package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/kube"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "render the stack file for another engine",
		Description: `Examples:
   stack export k8s -o k8s/ && kubectl apply -f k8s/`,
		Subcommands: []*cli.Command{{
			Name:  "k8s",
			Usage: "write Kubernetes manifests for the stack (kubectl apply -f DIR/)",
			Description: `Every service becomes a Deployment (or a StatefulSet with --volumes statefulset) and a
Service of the same name, so service names keep resolving. What cannot be carried over is
listed on stderr; --strict turns those warnings into errors.

Examples:
   stack export k8s -o k8s/ && kubectl apply -f k8s/
   stack export k8s --namespace shop --publish loadbalancer > shop.yaml`,
			Flags: append(stackFileFlags(false),
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "directory to write one file per object into (default: one stream on stdout)"},
				&cli.StringFlag{Name: "namespace", Usage: "namespace (default: the project name)"},
				&cli.StringFlag{Name: "volumes", Usage: "named volumes as pvc (one claim each, shared) or statefulset (a claim per replica)", Value: string(kube.VolumesPVC)},
				&cli.StringFlag{Name: "publish", Usage: "published ports as nodeport or loadbalancer Services", Value: string(kube.PublishNodePort)},
				&cli.BoolFlag{Name: "allow-hostpath", Usage: "map bind mounts to hostPath volumes instead of refusing them"},
				&cli.StringFlag{Name: "claim-size", Usage: "storage request of each claim", Value: "1Gi"},
				&cli.BoolFlag{Name: "strict", Usage: "fail on anything that cannot be carried over exactly"},
			),
			Action: runExportK8s,
		}},
	}
}

func runExportK8s(c *cli.Context) error {
	vm, pm := kube.VolumeMode(c.String("volumes")), kube.PublishMode(c.String("publish"))
	if vm != kube.VolumesPVC && vm != kube.VolumesStatefulSet {
		return usageError{fmt.Errorf("--volumes %q: want pvc or statefulset", vm)}
	}
	if pm != kube.PublishNodePort && pm != kube.PublishLoadBalancer {
		return usageError{fmt.Errorf("--publish %q: want nodeport or loadbalancer", pm)}
	}
	st, err := loadStack(c)
	if err != nil {
		return err
	}
	res, err := kube.Render(st, kube.Options{
		Namespace: c.String("namespace"), Volumes: vm, Publish: pm,
		AllowHostPath: c.Bool("allow-hostpath"), ClaimSize: c.String("claim-size"),
	})
	if err != nil {
		return err
	}
	if err := res.Err(c.Bool("strict")); err != nil {
		return err // it lists the findings that stop the export
	}
	for _, f := range res.Findings {
		fmt.Fprintln(c.App.ErrWriter, f)
	}
	if dir := c.String("output"); dir != "" {
		if err := kube.WriteDir(dir, res.Objects); err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "wrote %d objects to %s\n", len(res.Objects), dir)
		return nil
	}
	return kube.WriteStream(c.App.Writer, res.Objects)
}
