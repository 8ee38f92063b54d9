// Address and size formatting shared by the panels. GPAs travel as hex strings; numbers here stay below 2^53.

export const num = s => (typeof s === 'number' ? s : Number(s));
export const hex = n => '0x' + Math.floor(n).toString(16);

export function size(bytes) {
  const units = [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]];
  for (const [u, v] of units) if (bytes >= v && bytes % v === 0) return `${bytes / v}${u}`;
  for (const [u, v] of units) if (bytes >= v) return `${(bytes / v).toFixed(1)}${u}`;
  return `${bytes}B`;
}

export const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

/** The colour of a memory type (arm64 Normal / Normal-NC / Device, x86 WB / WC / UC...), as the legend shows it. */
export function typeColour(memType) {
  switch (memType) {
    case 'Normal': case 'WB': return '#3f9b5f';
    case 'NormalNC': case 'WC': return '#e2a72e';
    case 'Device': case 'UC': case 'UC-': return '#d24a3f';
    case 'WT': return '#4a7bd0';
    case 'WP': return '#8c5cc9';
    default: return '#9aa0a6';
  }
}

export const typeName = (memType, ipat) => (memType === 'NormalNC' ? 'Normal-NC' : memType) + (ipat ? '+IPAT' : '');

/** Sizes a canvas to w x h CSS pixels at the screen's density and clears it; returns its context, scaled to CSS pixels. */
export function fitCanvas(canvas, ctx, w, h) {
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.height = `${h}px`;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}
