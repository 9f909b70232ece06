package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// svgSeries is one line of the plot.
type svgSeries struct {
	label  string
	color  string
	dashed bool
	square bool // marker: square, else circle
	pts    [][2]float64
}

// svg writes a line plot of the listener's RSS (MiB) against the number
// of idle connections it holds: mote and go-libp2p, over TCP and QUIC.
// The first point of each line is the listener before any connection.
func (r *Results) svg(w io.Writer) {
	var series []svgSeries
	for _, st := range []struct{ name, color string }{{stackMote, "#1f77b4"}, {stackLibp2p, "#d95f02"}} {
		s := r.stack(st.name)
		for _, tr := range []string{"tcp", "quic"} {
			ser := svgSeries{label: st.name + " " + trName[tr], color: st.color, dashed: tr == "quic", square: tr == "quic"}
			for _, c := range s.Conns {
				if c.Transport != tr {
					continue
				}
				if len(ser.pts) == 0 {
					ser.pts = append(ser.pts, [2]float64{0, float64(c.BaseRSS) / (1 << 20)})
				}
				ser.pts = append(ser.pts, [2]float64{float64(c.N), float64(c.RSS) / (1 << 20)})
			}
			if len(ser.pts) > 0 {
				series = append(series, ser)
			}
		}
	}
	sub := fmt.Sprintf("go-libp2p %s, %s, %d CPUs, %s, %s", r.GoLibp2p, r.Go, r.CPUs, r.Date[:min(10, len(r.Date))], "loopback, one idle stream per connection")
	plotSVG(w, "Listener memory (VmRSS) against idle connections", sub, "idle connections held by the listener", "listener RSS (MiB)", series)
}

// plotSVG draws the series with linear axes starting at zero.
func plotSVG(w io.Writer, title, subtitle, xLabel, yLabel string, series []svgSeries) {
	const (
		width, height            = 800, 500
		left, right, top, bottom = 80, 30, 70, 70
		pw, ph                   = width - left - right, height - top - bottom
	)
	xMax, yMax := 1.0, 1.0
	for _, s := range series {
		for _, p := range s.pts {
			xMax, yMax = math.Max(xMax, p[0]), math.Max(yMax, p[1])
		}
	}
	xStep, yStep := niceStep(xMax/5), niceStep(yMax/5)
	xMax, yMax = math.Ceil(xMax/xStep)*xStep, math.Ceil(yMax/yStep)*yStep
	px := func(x float64) float64 { return left + x/xMax*pw }
	py := func(y float64) float64 { return top + ph - y/yMax*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="44" fill="#555">%s</text>`+"\n", left, html.EscapeString(subtitle))

	// Grid and ticks.
	for x := 0.0; x <= xMax+xStep/2; x += xStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", px(x), top, px(x), top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), top+ph+18, tickLabel(x))
	}
	for y := 0.0; y <= yMax+yStep/2; y += yStep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, py(y), left+pw, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, py(y)+4, tickLabel(y))
	}
	// Axes and their labels.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, top+ph)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", left+pw/2, height-24, html.EscapeString(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, html.EscapeString(yLabel))

	// Lines and markers, then the legend on a white box above them.
	dash := func(s svgSeries) string {
		if s.dashed {
			return ` stroke-dasharray="6 4"`
		}
		return ""
	}
	for _, s := range series {
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash(s))
		for _, p := range s.pts {
			b.WriteString(marker(px(p[0]), py(p[1]), s))
		}
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="170" height="%d" fill="white" fill-opacity="0.9" stroke="#ccc"/>`+"\n", left+6, top+4, 20*len(series)+4)
	for i, s := range series {
		lx, ly := float64(left+16), float64(top+16+i*20)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+30, ly, s.color, dash(s))
		b.WriteString(marker(lx+15, ly, s))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+38, ly+4, html.EscapeString(s.label))
	}
	b.WriteString("</svg>\n")
	io.WriteString(w, b.String())
}

func marker(x, y float64, s svgSeries) string {
	if s.square {
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="7" height="7" fill="%s"/>`+"\n", x-3.5, y-3.5, s.color)
	}
	return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x, y, s.color)
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
