// A line chart of message rates over time on a <canvas>: y from 0 to a round maximum, x over the
// sampled window, one line per series. Drawn at the device's pixel ratio so it stays sharp.

const PAD = { left: 56, right: 12, top: 12, bottom: 24 };
const GRID = '#e5e7eb';
const TEXT = '#6b7280';

// 1, 2, 5, 10, 20, 50, ... the smallest one >= v.
function roundUp(v) {
  let step = 1;
  while (step * 5 < v) step *= 10;
  if (step >= v) return step;
  if (step * 2 >= v) return step * 2;
  return step * 5;
}

function clock(t) {
  return new Date(t).toLocaleTimeString('en-GB', { hour12: false });
}

// series: [{key, label, color}]; samples: [{t: ms, values: {key: rate}}], oldest first.
export function drawRateChart(canvas, series, samples) {
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.font = '11px system-ui, sans-serif';

  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  let max = 0;
  for (const s of samples) for (const { key } of series) max = Math.max(max, s.values[key] || 0);
  const top = roundUp(Math.max(max, 1));
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  g.textAlign = 'right';
  g.textBaseline = 'middle';
  const divisions = String(top).startsWith('2') ? 4 : 5; // top 1, 2, 5: steps of 0.2, 0.5, 1 (x 10^k)
  for (let i = 0; i <= divisions; i++) {
    const v = (top * i) / divisions;
    g.strokeStyle = GRID;
    g.beginPath();
    g.moveTo(PAD.left, Math.round(y(v)) + 0.5);
    g.lineTo(width - PAD.right, Math.round(y(v)) + 0.5);
    g.stroke();
    g.fillStyle = TEXT;
    g.fillText(`${v.toLocaleString('en-US', { maximumFractionDigits: 1 })}/s`, PAD.left - 6, y(v));
  }

  if (samples.length < 2) {
    g.textAlign = 'center';
    g.fillText('Collecting samples…', PAD.left + plotW / 2, PAD.top + plotH / 2);
    return;
  }
  const t0 = samples[0].t;
  const span = samples[samples.length - 1].t - t0 || 1;
  const x = (t) => PAD.left + ((t - t0) / span) * plotW;

  g.textBaseline = 'top';
  const ticks = plotW > 500 ? 4 : 1;
  for (let i = 0; i <= ticks; i++) {
    g.textAlign = i === 0 ? 'left' : i === ticks ? 'right' : 'center';
    g.fillText(clock(t0 + (span * i) / ticks), PAD.left + (plotW * i) / ticks, height - PAD.bottom + 6);
  }

  g.lineWidth = 2;
  g.lineJoin = 'round';
  for (const { key, color } of series) {
    g.strokeStyle = color;
    g.beginPath();
    samples.forEach((s, i) => (i === 0 ? g.moveTo : g.lineTo).call(g, x(s.t), y(s.values[key] || 0)));
    g.stroke();
  }
}
