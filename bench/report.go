package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Dist summarises samples in milliseconds.
type Dist struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Max    float64 `json:"max"`
}

func distOf(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	slices.Sort(ms)
	q := func(p float64) float64 {
		// Nearest rank.
		i := int(math.Ceil(p*float64(len(ms)))) - 1
		return ms[max(0, min(i, len(ms)-1))]
	}
	return Dist{N: len(ms), Min: ms[0], Median: q(0.5), P95: q(0.95), Max: ms[len(ms)-1]}
}

// row is one metric of the table: a value per system and how to print it.
type row struct {
	name  string
	cells map[string]cell
}

type cell struct {
	text  string
	value float64 // compared for the ratio
	ok    bool
}

func num(v float64, unit string) cell { return cell{text: trim(v) + unit, value: v, ok: true} }

func trim(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func distCell(d Dist) cell {
	if d.N == 0 {
		return cell{text: "n/a"}
	}
	if d.N == 1 {
		return num(d.Median, " ms")
	}
	return cell{text: fmt.Sprintf("%s / %s / %s (p95 %s) ms", trim(d.Min), trim(d.Median), trim(d.Max), trim(d.P95)),
		value: d.Median, ok: true}
}

// WriteTable writes one Markdown table per size with both systems side by
// side and the ratio govn/ovn of the medians (< 1: govn is faster/smaller).
func WriteTable(w io.Writer, results []Result) error {
	type key struct{ s, p int }
	bySize := map[key]map[string]Result{}
	var keys []key
	for _, r := range results {
		k := key{r.Switches, r.Ports}
		if bySize[k] == nil {
			bySize[k] = map[string]Result{}
			keys = append(keys, k)
		}
		bySize[k][r.System] = r
	}
	for _, k := range keys {
		rs := bySize[k]
		var systems []string
		for _, s := range []string{SystemGovn, SystemOVN} {
			if _, ok := rs[s]; ok {
				systems = append(systems, s)
			}
		}
		rows := tableRows(rs, systems)
		fmt.Fprintf(w, "\n### %d switches x %d ports (%d ports)\n\n", k.s, k.p/k.s, k.p)
		fmt.Fprintf(w, "| metric | %s | ratio govn/ovn |\n|---|%s---|\n", strings.Join(systems, " | "), strings.Repeat("---|", len(systems)))
		for _, r := range rows {
			var cells []string
			for _, s := range systems {
				c, ok := r.cells[s]
				if !ok {
					c = cell{text: "n/a"}
				}
				cells = append(cells, c.text)
			}
			ratio := "–"
			g, o := r.cells[SystemGovn], r.cells[SystemOVN]
			if g.ok && o.ok && o.value > 0 {
				ratio = fmt.Sprintf("%.2f", g.value/o.value)
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", r.name, strings.Join(cells, " | "), ratio)
		}
		for _, s := range systems {
			for _, n := range rs[s].Notes {
				fmt.Fprintf(w, "\nNote (%s): %s\n", s, n)
			}
		}
	}
	return nil
}

func tableRows(rs map[string]Result, systems []string) []row {
	var rows []row
	add := func(name string, f func(Result) (cell, bool)) {
		r := row{name: name, cells: map[string]cell{}}
		for _, s := range systems {
			if c, ok := f(rs[s]); ok {
				r.cells[s] = c
			}
		}
		rows = append(rows, r)
	}
	add("bulk → sb_cfg", func(r Result) (cell, bool) { return num(r.BulkSB, " s"), true })
	add("bulk → hv_cfg", func(r Result) (cell, bool) { return num(r.BulkHV, " s"), true })
	lat := map[string]bool{}
	for _, s := range systems {
		for k := range rs[s].Latency {
			lat[k] = true
		}
	}
	order := []string{"port-add/sb", "port-add/hv", "port-del/sb", "port-del/hv", "acl-add/sb", "acl-add/hv",
		"as-add-ip/sb", "as-add-ip/hv", "northd-recompute", "northd-recompute-self", "controller-recompute",
		"controller-recompute-self"}
	for _, k := range order {
		if !lat[k] {
			continue
		}
		label := k
		switch k {
		case "northd-recompute":
			label = "northd forced recompute → sb_cfg"
		case "northd-recompute-self":
			label = "northd full recompute (own metric)"
		case "controller-recompute":
			label = "controller forced recompute → hv_cfg"
		case "controller-recompute-self":
			label = "controller full recompute (own metric)"
		}
		add(label+" (min/med/max)", func(r Result) (cell, bool) { return distCell(r.Latency[k]), true })
	}
	add("SB Logical_Flow rows", func(r Result) (cell, bool) { return num(float64(r.LogicalFlows), ""), true })
	add("OpenFlow flows (br-int)", func(r Result) (cell, bool) { return num(float64(r.OpenFlowFlows), ""), true })
	roles := []struct{ role, govn, ovn string }{
		{"NB db", "govn-nbdb", "ovn-nbdb"}, {"SB db", "govn-sbdb", "ovn-sbdb"},
		{"northd", "govn-northd", "ovn-northd"}, {"controller", "govn-controller", "ovn-controller"},
	}
	for _, ro := range roles {
		pick := func(r Result) (Proc, bool) {
			p, ok := r.Daemons[ro.govn]
			if !ok {
				p, ok = r.Daemons[ro.ovn]
			}
			return p, ok
		}
		add(ro.role+" RSS MB (peak)", func(r Result) (cell, bool) {
			p, ok := pick(r)
			return cell{text: fmt.Sprintf("%s (%s)", trim(p.RSSMB), trim(p.HWMMB)), value: p.RSSMB, ok: true}, ok
		})
		add(ro.role+" CPU s bulk / total", func(r Result) (cell, bool) {
			p, ok := pick(r)
			return cell{text: fmt.Sprintf("%s / %s", trim(p.CPUBulkS), trim(p.CPUTotalS)), value: p.CPUTotalS, ok: true}, ok
		})
	}
	return rows
}

// Wins lists, per size, the metrics where govn's median is lower (better)
// and higher than OVN's.
func Wins(results []Result) (wins, losses []string) {
	type key struct{ s, p int }
	by := map[key]map[string]Result{}
	var keys []key
	for _, r := range results {
		k := key{r.Switches, r.Ports}
		if by[k] == nil {
			by[k] = map[string]Result{}
			keys = append(keys, k)
		}
		by[k][r.System] = r
	}
	for _, k := range keys {
		rs := by[k]
		if _, ok := rs[SystemOVN]; !ok {
			continue
		}
		if _, ok := rs[SystemGovn]; !ok {
			continue
		}
		for _, r := range tableRows(rs, []string{SystemGovn, SystemOVN}) {
			g, o := r.cells[SystemGovn], r.cells[SystemOVN]
			// Flow counts are not better or worse; equal values are neither.
			if !g.ok || !o.ok || o.value == 0 || g.value == o.value ||
				strings.Contains(r.name, "Logical_Flow") || strings.Contains(r.name, "OpenFlow") {
				continue
			}
			s := fmt.Sprintf("%d ports: %s (x%.2f)", k.p, r.name, g.value/o.value)
			if g.value < o.value {
				wins = append(wins, s)
			} else {
				losses = append(losses, s)
			}
		}
	}
	sort.Strings(wins)
	sort.Strings(losses)
	return wins, losses
}
