package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// templateFuncs are the functions Docker's --format templates offer.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"pad": func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"println": fmt.Sprintln,
}

// formatter prints rows through a --format template. "table" before the
// template prints a header (the column names from headers) and aligns
// columns; without a template, def is used as a table.
type formatter struct {
	tmpl  *template.Template
	table bool
	tw    *tabwriter.Writer
	w     io.Writer
}

func newFormatter(w io.Writer, format, def string, headers map[string]string) (*formatter, error) {
	switch format {
	case "":
		format = def
	case "json":
		format = "{{json .}}"
	}
	f := &formatter{w: w}
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		f.table = true
		format = strings.TrimSpace(rest)
		if format == "" {
			format = strings.TrimSpace(strings.TrimPrefix(def, "table"))
		}
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, usageError{fmt.Sprintf("template parsing error: %v", err)}
	}
	f.tmpl = t
	if f.table {
		f.tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		// The header: the same template run over the column names.
		ht, err := template.New("header").Funcs(templateFuncs).Parse(format)
		if err == nil {
			var sb strings.Builder
			if ht.Execute(&sb, headers) == nil {
				fmt.Fprintln(f.tw, sb.String())
			}
		}
	}
	return f, nil
}

func (f *formatter) row(v any) error {
	out := f.w
	if f.tw != nil {
		out = f.tw
	}
	var sb strings.Builder
	if err := f.tmpl.Execute(&sb, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	_, err := fmt.Fprintln(out, sb.String())
	return err
}

func (f *formatter) flush() error {
	if f.tw != nil {
		return f.tw.Flush()
	}
	return nil
}
