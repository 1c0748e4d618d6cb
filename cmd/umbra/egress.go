package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

func egressCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "egress",
		Short: "Work with the egress sandbox's recordings",
	}
	cmd.AddCommand(egressExportCmd())
	return cmd
}

func egressExportCmd() *cobra.Command {
	var a adminClient
	var out string
	cmd := &cobra.Command{
		Use:   "export SERVICE",
		Short: "Write an egress service's recorded calls as a Hoverfly v5 simulation",
		Long: "Fetches GET /api/v1/egress/SERVICE/simulation from the running umbra and writes it\n" +
			"to --output (default standard output). The file can be listed in the service's\n" +
			"simulations: or loaded into Hoverfly.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := a.do("GET", "/api/v1/egress/"+url.PathEscape(args[0])+"/simulation", nil, &raw); err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			if err := os.WriteFile(out, raw, 0o644); err != nil {
				return &exitError{1, err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	a.flags(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default standard output)")
	return cmd
}
