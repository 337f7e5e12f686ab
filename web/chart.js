// chart.js - small time-series charts on <canvas> for the dashboard: a line chart with labelled axes, smooth (monotone) lines, crisp on any devicePixelRatio and a hover read-out, and a bare sparkline.

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif';
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const plain = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/* cssVar: the value of a custom property of the root element (the theme's colours). */
function cssVar(name, fallback) {
	const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
	return v || fallback;
}

/* withAlpha: COLOR (#rgb or #rrggbb, as the theme defines them) at opacity A; other colours as they are. */
function withAlpha(color, a) {
	let m = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/i.exec(color);
	if (m)
		m = [m[0], m[1] + m[1], m[2] + m[2], m[3] + m[3]];
	else
		m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
	if (!m)
		return color;
	return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${a})`;
}

/*
 * niceScale: the top of a y axis and its tick step for data up to MAX: the
 * smallest step of 1, 2, 2.5 or 5 times a power of ten (whole numbers only
 * when INTEGER) that covers MAX, plus a little headroom, in at most TICKS
 * steps. At least MINTOP, so an idle queue still has an axis.
 */
export function niceScale(max, ticks, integer, minTop) {
	const want = Math.max(max * 1.06, minTop);
	let mag = 10 ** Math.floor(Math.log10(want / ticks));
	for (;;) {
		for (const f of [1, 2, 2.5, 5]) {
			const step = f * mag;
			if ((integer && (step < 1 || !Number.isInteger(step))) || Math.ceil(want / step - 1e-9) > ticks)
				continue;
			return { top: Math.ceil(want / step - 1e-9) * step, step };
		}
		mag *= 10;
	}
}

/*
 * monotonePath: add to CTX a smooth curve through the points PTS ([x, y]
 * pixels, x increasing) that never overshoots them (Fritsch-Carlson monotone
 * cubic interpolation): a depth of 0 is never drawn below the axis and a
 * step up does not wobble.
 */
function monotonePath(ctx, pts, moveFirst) {
	const n = pts.length;
	if (moveFirst)
		ctx.moveTo(pts[0][0], pts[0][1]);
	else
		ctx.lineTo(pts[0][0], pts[0][1]);
	if (n === 2) {
		ctx.lineTo(pts[1][0], pts[1][1]);
		return;
	}
	const d = [], m = new Array(n);
	for (let i = 0; i < n - 1; i++)
		d.push((pts[i + 1][1] - pts[i][1]) / (pts[i + 1][0] - pts[i][0] || 1e-9));
	m[0] = d[0];
	m[n - 1] = d[n - 2];
	for (let i = 1; i < n - 1; i++)
		m[i] = d[i - 1] * d[i] <= 0 ? 0 : (d[i - 1] + d[i]) / 2;
	for (let i = 0; i < n - 1; i++) {
		if (d[i] === 0) {
			m[i] = 0;
			m[i + 1] = 0;
			continue;
		}
		const a = m[i] / d[i], b = m[i + 1] / d[i], s = a * a + b * b;
		if (s > 9) {
			const t = 3 / Math.sqrt(s);
			m[i] = t * a * d[i];
			m[i + 1] = t * b * d[i];
		}
	}
	for (let i = 0; i < n - 1; i++) {
		const [x0, y0] = pts[i], [x1, y1] = pts[i + 1], h = (x1 - x0) / 3;
		ctx.bezierCurveTo(x0 + h, y0 + m[i] * h, x1 - h, y1 - m[i + 1] * h, x1, y1);
	}
}

/* fitCanvas: size CANVAS's backing store to its CSS size times devicePixelRatio and set CTX's transform to match; returns [w, h] in CSS pixels. */
function fitCanvas(canvas, ctx) {
	const dpr = window.devicePixelRatio || 1;
	const w = canvas.clientWidth, h = canvas.clientHeight;
	const bw = Math.max(1, Math.round(w * dpr)), bh = Math.max(1, Math.round(h * dpr));
	if (canvas.width !== bw || canvas.height !== bh) {
		canvas.width = bw;
		canvas.height = bh;
	}
	ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
	return [w, h];
}

/* windowFor: the seconds a chart shows for SAMPLES up to NOW: their span rounded up to whole minutes, at least one, at most MAX. */
function windowFor(samples, now, max) {
	const span = samples.length ? now - samples[0].t : 0;
	return Math.min(max, Math.max(60, Math.ceil(span / 60 - 0.02) * 60));
}

/*
 * TimeChart: one canvas showing the last WINDOW seconds of one or more series.
 * options: series [{key, label, color (CSS variable name), fill, dash ([on, off] pixels)}], yTitle,
 * windowS, integer (whole-number y ticks), minTop, format (value -> text for
 * the read-out), yUnit (max -> {per, label}: the unit of the y ticks, PER
 * values each, chosen for the largest value; ticks are nice numbers of it and
 * label(n) writes n of it; default: plain numbers), refLines() -> [{value,
 * label}] (e.g. the capacity), emptyText (shown while no visible sample has a
 * value). A sample with down: true is a failed poll, drawn as an outage band;
 * a missing or null value only breaks its line.
 */
export class TimeChart {
	constructor(canvas, options) {
		this.canvas = canvas;
		this.ctx = canvas.getContext('2d');
		this.o = Object.assign({ windowS: 300, integer: false, minTop: 4, format: v => plain.format(v),
			yUnit: () => ({ per: 1, label: v => (v >= 1000 ? compact.format(v) : plain.format(v)) }), refLines: () => [], emptyText: null }, options);
		this.samples = [];
		this.now = 0;
		this.hoverX = null;
		canvas.addEventListener('pointermove', e => {
			const r = canvas.getBoundingClientRect();
			this.hoverX = e.clientX - r.left;
			this.draw();
		});
		canvas.addEventListener('pointerleave', () => {
			this.hoverX = null;
			this.draw();
		});
	}

	/* setData: SAMPLES [{t (s, monotonic), values: {key: number or null}, down}], oldest first; NOW: the right edge. */
	setData(samples, now) {
		this.samples = samples;
		this.now = now;
	}

	/* fit: size the backing store to the element's size times devicePixelRatio; returns [w, h] in CSS pixels. */
	fit() {
		return fitCanvas(this.canvas, this.ctx);
	}

	draw() {
		const [W, H] = this.fit();
		const ctx = this.ctx, o = this.o;
		ctx.clearRect(0, 0, W, H);
		if (W < 60 || H < 60)
			return;
		const text = cssVar('--muted', '#667'), grid = cssVar('--grid', '#e8ecf2'), fg = cssVar('--text', '#123');
		// The window grows with the history, a minute at a time, up to windowS:
		// a page opened a moment ago shows its first minute across the chart.
		const win = windowFor(this.samples, this.now, o.windowS);
		const t1 = this.now, t0 = t1 - win;
		const visible = this.samples.filter(s => s.t >= t0 - 5);

		let max = 0, anyValue = false;
		for (const s of visible)
			for (const ser of o.series) {
				const v = s.values[ser.key];
				if (v != null)
					anyValue = true;
				if (v != null && v > max)
					max = v;
			}
		const refs = o.refLines().filter(r => r.value > 0 && r.value <= max * 1.6);
		for (const r of refs)
			max = Math.max(max, r.value);
		const unit = o.yUnit(Math.max(max, o.minTop));
		const nice = niceScale(max / unit.per, H < 220 ? 4 : 5, o.integer, o.minTop / unit.per);
		const top = nice.top * unit.per;

		ctx.font = FONT;
		const labels = [];
		for (let k = 0; k * nice.step <= nice.top + nice.step / 2; k++) {
			const n = Number((k * nice.step).toPrecision(12)); // 0.30000000000000004 is 0.3
			labels.push([n * unit.per, unit.label(n)]);
		}
		const labelW = Math.max(...labels.map(([, s]) => ctx.measureText(s).width));
		const L = Math.ceil(labelW) + 26, R = 12, T = 10, B = 36;
		const pw = W - L - R, ph = H - T - B;
		const X = t => L + ((t - t0) / win) * pw;
		const Y = v => T + ph - (v / top) * ph;

		// grid lines and y tick labels
		ctx.lineWidth = 1;
		ctx.textAlign = 'right';
		ctx.textBaseline = 'middle';
		for (const [v, s] of labels) {
			const y = Math.round(Y(v)) + 0.5;
			ctx.strokeStyle = v === 0 ? withAlpha(fg, 0.35) : grid;
			ctx.beginPath();
			ctx.moveTo(L, y);
			ctx.lineTo(L + pw, y);
			ctx.stroke();
			ctx.fillStyle = text;
			ctx.fillText(s, L - 6, y);
		}
		// x ticks: every 10 s over the first minute, then every minute (two on a narrow chart)
		ctx.textAlign = 'center';
		ctx.textBaseline = 'top';
		const inSeconds = win <= 60;
		const everyS = inSeconds ? (pw < 260 ? 20 : 10) : pw < 260 && win > 180 ? 120 : 60;
		for (let k = 0; k * everyS <= win; k++) {
			const x = Math.round(X(t1 - k * everyS)) + 0.5;
			ctx.strokeStyle = grid;
			ctx.beginPath();
			ctx.moveTo(x, T + ph);
			ctx.lineTo(x, T + ph + 4);
			ctx.stroke();
			ctx.fillStyle = text;
			ctx.textAlign = k === 0 ? 'right' : 'center';
			ctx.fillText(k === 0 ? 'now' : String(inSeconds ? k * everyS : (k * everyS) / 60), k === 0 ? x + 4 : x, T + ph + 6);
		}
		// axis titles
		ctx.textAlign = 'center';
		ctx.fillText(inSeconds ? 'seconds ago' : 'minutes ago', L + pw / 2, T + ph + 21);
		ctx.save();
		ctx.translate(11, T + ph / 2);
		ctx.rotate(-Math.PI / 2);
		ctx.textBaseline = 'middle';
		ctx.fillText(o.yTitle, 0, 0);
		ctx.restore();

		ctx.save();
		ctx.beginPath();
		ctx.rect(L, T - 4, pw + 4, ph + 8);
		ctx.clip();

		// outages: from the last answer before failed polls to the first after, a faint band
		const bad = cssVar('--bad', '#d33');
		const isGap = smp => smp.down === true;
		for (let i = 0; i < visible.length; i++) {
			if (!isGap(visible[i]))
				continue;
			let j = i;
			while (j + 1 < visible.length && isGap(visible[j + 1]))
				j++;
			const xa = X(i > 0 ? visible[i - 1].t : visible[i].t);
			const xb = j + 1 < visible.length ? X(visible[j + 1].t) : X(t1);
			ctx.fillStyle = withAlpha(bad, 0.08);
			ctx.fillRect(xa, T, Math.max(2, xb - xa), ph);
			if (xb - xa > 56) {
				ctx.fillStyle = withAlpha(bad, 0.8);
				ctx.textAlign = 'center';
				ctx.textBaseline = 'top';
				ctx.fillText('no answer', (xa + xb) / 2, T + 4);
			}
			i = j;
		}

		// reference lines (capacity)
		for (const r of refs) {
			const y = Math.round(Y(r.value)) + 0.5;
			ctx.setLineDash([5, 4]);
			ctx.strokeStyle = withAlpha(bad, 0.7);
			ctx.beginPath();
			ctx.moveTo(L, y);
			ctx.lineTo(L + pw, y);
			ctx.stroke();
			ctx.setLineDash([]);
			ctx.fillStyle = bad;
			ctx.textAlign = 'left';
			ctx.textBaseline = 'bottom';
			ctx.fillText(r.label, L + 6, y - 2);
		}

		// the series: runs of consecutive values, broken where a poll failed
		for (const ser of o.series) {
			const color = cssVar(ser.color, '#36c');
			const runs = [];
			let run = [];
			for (const s of visible) {
				const v = s.values[ser.key];
				if (v == null) {
					if (run.length)
						runs.push(run);
					run = [];
				} else {
					run.push([X(s.t), Y(v)]);
				}
			}
			if (run.length)
				runs.push(run);
			for (const pts of runs) {
				if (pts.length === 1) {
					ctx.fillStyle = color;
					ctx.beginPath();
					ctx.arc(pts[0][0], pts[0][1], 2, 0, 2 * Math.PI);
					ctx.fill();
					continue;
				}
				if (ser.fill) {
					const g = ctx.createLinearGradient(0, T, 0, T + ph);
					g.addColorStop(0, withAlpha(color, 0.28));
					g.addColorStop(1, withAlpha(color, 0.03));
					ctx.fillStyle = g;
					ctx.beginPath();
					ctx.moveTo(pts[0][0], Y(0));
					monotonePath(ctx, pts, false);
					ctx.lineTo(pts[pts.length - 1][0], Y(0));
					ctx.closePath();
					ctx.fill();
				}
				ctx.strokeStyle = color;
				ctx.lineWidth = 2;
				ctx.lineJoin = 'round';
				ctx.lineCap = ser.dash ? 'butt' : 'round';
				ctx.setLineDash(ser.dash || []);
				ctx.beginPath();
				monotonePath(ctx, pts, true);
				ctx.stroke();
				ctx.setLineDash([]);
			}
			// the latest value: a dot at the right end
			const last = visible[visible.length - 1];
			if (last && last.values[ser.key] != null) {
				ctx.fillStyle = color;
				ctx.strokeStyle = cssVar('--card', '#fff');
				ctx.lineWidth = 2;
				ctx.beginPath();
				ctx.arc(X(last.t), Y(last.values[ser.key]), 3.5, 0, 2 * Math.PI);
				ctx.fill();
				ctx.stroke();
			}
		}
		ctx.restore();

		const note = visible.length < 2 ? 'collecting samples…' : !anyValue ? o.emptyText : null;
		if (note) {
			ctx.fillStyle = text;
			ctx.textAlign = 'center';
			ctx.textBaseline = 'middle';
			ctx.fillText(note, L + pw / 2, T + ph / 2);
		}
		this.drawHover(visible, X, Y, L, T, pw, ph, fg);
	}

	/* drawHover: under the pointer, a vertical rule, the nearest sample's dots and a read-out box. */
	drawHover(visible, X, Y, L, T, pw, ph, fg) {
		if (this.hoverX == null || this.hoverX < L || this.hoverX > L + pw || !visible.length)
			return;
		const ctx = this.ctx, o = this.o;
		let best = null;
		for (const s of visible)
			if (!best || Math.abs(X(s.t) - this.hoverX) < Math.abs(X(best.t) - this.hoverX))
				best = s;
		const x = Math.round(X(best.t)) + 0.5;
		if (x < L || x > L + pw + 1)
			return;
		ctx.strokeStyle = withAlpha(fg, 0.35);
		ctx.lineWidth = 1;
		ctx.beginPath();
		ctx.moveTo(x, T);
		ctx.lineTo(x, T + ph);
		ctx.stroke();

		const ago = Math.max(0, Math.round(this.now - best.t));
		const lines = [ago === 0 ? 'now' : `${ago} s ago`];
		for (const ser of o.series) {
			const v = best.values[ser.key];
			lines.push(`${ser.label}: ${v == null ? 'no data' : o.format(v)}`);
			if (v != null) {
				ctx.fillStyle = cssVar(ser.color, '#36c');
				ctx.beginPath();
				ctx.arc(x, Y(v), 3.5, 0, 2 * Math.PI);
				ctx.fill();
			}
		}
		ctx.font = FONT;
		const w = Math.max(...lines.map(s => ctx.measureText(s).width)) + 16, h = lines.length * 15 + 8;
		let bx = x + 10;
		if (bx + w > L + pw)
			bx = x - 10 - w;
		const by = T + 4;
		ctx.fillStyle = withAlpha(cssVar('--card', '#fff'), 0.94);
		ctx.strokeStyle = cssVar('--border', '#ccd');
		ctx.beginPath();
		ctx.roundRect(bx, by, w, h, 6);
		ctx.fill();
		ctx.stroke();
		ctx.textAlign = 'left';
		ctx.textBaseline = 'top';
		lines.forEach((s, i) => {
			ctx.fillStyle = i === 0 ? cssVar('--muted', '#667') : fg;
			ctx.fillText(s, bx + 8, by + 5 + i * 15);
		});
	}
}

/*
 * drawSparkline: on CANVAS, the series KEY of SAMPLES (as TimeChart's) over
 * the last minutes up to NOW (the window grows with the history, like the
 * charts', up to WINDOWS): a line with a faint fill, its own scale from 0 to
 * at least MINTOP, a dot at the latest value, faint bands for failed polls.
 * No axes: the number beside it says the value.
 */
export function drawSparkline(canvas, samples, now, { key, color = '--accent', windowS = 300, minTop = 4 }) {
	const ctx = canvas.getContext('2d');
	const [W, H] = fitCanvas(canvas, ctx);
	ctx.clearRect(0, 0, W, H);
	if (W < 20 || H < 10)
		return;
	const win = windowFor(samples, now, windowS), t0 = now - win;
	const visible = samples.filter(s => s.t >= t0 - 5);
	let max = 0;
	for (const s of visible)
		if (s.values[key] != null && s.values[key] > max)
			max = s.values[key];
	const top = Math.max(max * 1.1, minTop);
	const P = 3; // room for the end dot
	const X = t => P + ((t - t0) / win) * (W - 2 * P);
	const Y = v => H - P - (v / top) * (H - 2 * P);
	const c = cssVar(color, '#36c');

	ctx.strokeStyle = cssVar('--grid', '#e8ecf2');
	ctx.lineWidth = 1;
	ctx.beginPath();
	ctx.moveTo(0, Math.round(Y(0)) + 0.5);
	ctx.lineTo(W, Math.round(Y(0)) + 0.5);
	ctx.stroke();
	for (let i = 0; i < visible.length; i++) {
		if (!visible[i].down)
			continue;
		let j = i;
		while (j + 1 < visible.length && visible[j + 1].down)
			j++;
		const xa = X(i > 0 ? visible[i - 1].t : visible[i].t);
		const xb = j + 1 < visible.length ? X(visible[j + 1].t) : X(now);
		ctx.fillStyle = withAlpha(cssVar('--bad', '#d33'), 0.1);
		ctx.fillRect(xa, 0, Math.max(2, xb - xa), H);
		i = j;
	}
	const runs = [];
	let run = [];
	for (const s of visible) {
		const v = s.values[key];
		if (v == null) {
			if (run.length)
				runs.push(run);
			run = [];
		} else {
			run.push([X(s.t), Y(v)]);
		}
	}
	if (run.length)
		runs.push(run);
	for (const pts of runs) {
		if (pts.length < 2)
			continue;
		ctx.fillStyle = withAlpha(c, 0.16);
		ctx.beginPath();
		ctx.moveTo(pts[0][0], Y(0));
		monotonePath(ctx, pts, false);
		ctx.lineTo(pts[pts.length - 1][0], Y(0));
		ctx.closePath();
		ctx.fill();
		ctx.strokeStyle = c;
		ctx.lineWidth = 1.5;
		ctx.lineJoin = 'round';
		ctx.beginPath();
		monotonePath(ctx, pts, true);
		ctx.stroke();
	}
	const last = visible[visible.length - 1];
	if (last && last.values[key] != null) {
		ctx.fillStyle = c;
		ctx.beginPath();
		ctx.arc(X(last.t), Y(last.values[key]), 2.5, 0, 2 * Math.PI);
		ctx.fill();
	}
}
