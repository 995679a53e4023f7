package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Output formats for -o.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// validateOutput checks the -o value.
func (o *options) validateOutput() error {
	switch o.output {
	case FormatTable, FormatJSON, FormatYAML:
		return nil
	}
	return fmt.Errorf("-o %q: want table, json or yaml", o.output)
}

// print writes v in the -o format: json and yaml marshal v (through its json
// tags, so both show the same field names); table calls table, which writes
// the human form.
func (o *options) print(v any, table func(w io.Writer) error) error {
	switch o.output {
	case FormatJSON:
		enc := json.NewEncoder(o.out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = o.out.Write(b)
		return err
	case FormatTable:
		return table(o.out)
	}
	return o.validateOutput()
}

// printTable writes rows under an upper-case header, columns aligned.
func printTable(w io.Writer, header []string, rows [][]string) error {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// An empty last cell would leave the padding of the one before it.
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "\n") {
			lines[i] = strings.TrimRight(l[:len(l)-1], " ") + "\n"
		}
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}
