namespace Audit.Api.Http;

/// <summary>The web UI: one page over the same HTTP API (runs, state at a point, why, history).</summary>
internal static class Ui
{
    public const string Html = """
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>memory-attribute audit</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-family:ui-monospace,monospace;font-size:13px}
th{background:#f3f3f3}.Normal,.WB{background:#e6f4e6}.NormalNC,.WC{background:#fdf6d8}.Device,.UC{background:#f9e0e0}
input{font-family:ui-monospace,monospace}pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap}
</style></head><body>
<h1>memory-attribute audit</h1>
<p>Runs: <select id="run"></select> at <input id="at" size="26" placeholder="seq or RFC 3339 time (end)">
<button id="show">state</button> &nbsp; gpa <input id="gpa" size="18" placeholder="0x40000200000"> <button id="why">why</button> <button id="hist">history</button></p>
<div id="out"></div>
<script>
const $ = id => document.getElementById(id), esc = s => String(s ?? '').replace(/[&<>]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
async function get(url){const r = await fetch(url); const j = await r.json(); if(!r.ok) throw new Error(j.detail || j.title); return j;}
function table(rows, cols, cls){ if(!rows.length) return '<p>(none)</p>';
  return '<table><tr>' + cols.map(c => '<th>'+c+'</th>').join('') + '</tr>' + rows.map(r => '<tr class="'+esc(cls ? r[cls] : '')+'">' + cols.map(c => '<td>'+esc(r[c])+'</td>').join('') + '</tr>').join('') + '</table>'; }
async function runs(){ const list = await get('/runs'); $('run').innerHTML = list.map(r => '<option>'+esc(r.run)+'</option>').join(''); }
function q(extra){ const at = $('at').value.trim(); return extra + (at ? '&at=' + encodeURIComponent(at) : ''); }
$('show').onclick = async () => { try { const s = await get('/runs/'+encodeURIComponent($('run').value)+'/state?' + q(''));
  $('out').innerHTML = '<h2>'+esc(s.run)+' at seq '+s.at+'</h2><h3>stage-2</h3>' + table(s.stage2, ['gpa','size','granule','memType','ipat','perms','policy','decidedAt'], 'memType')
   + '<h3>memslots</h3>' + table(s.memslots, ['slot','asId','gpa','size','hva','flags','guestMemfd','since']) + '<h3>VMAs</h3>' + table(s.vmas, ['start','length','prot','flags','memType','backing','path','since'])
   + '<h3>attributes</h3>' + table(s.attributes, ['gpa','size','private','since']) + '<h3>guest_memfd shareability</h3>' + table(s.shareability, ['fd','offset','size','shared','since']);
  } catch(e){ $('out').textContent = e.message; } };
$('why').onclick = async () => { try { const w = await get('/runs/'+encodeURIComponent($('run').value)+'/why?' + q('gpa=' + encodeURIComponent($('gpa').value)));
  $('out').innerHTML = '<h2>'+esc(w.gpa)+' at seq '+w.at+': '+(w.mapping ? esc(w.mapping.memType+' '+w.mapping.size+' '+w.mapping.perms) : esc(w.outcome))+'</h2><ol>'
   + w.explanation.map(s => '<li>'+esc(s.text)+'<br><small>'+esc(s.rule)+' &mdash; '+s.facts.map(f => esc(f.name+'='+f.value+(f.seq!=null?' @'+f.seq:''))).join('; ')+'</small></li>').join('') + '</ol>';
  } catch(e){ $('out').textContent = e.message; } };
$('hist').onclick = async () => { try { const h = await get('/runs/'+encodeURIComponent($('run').value)+'/history?gpa=' + encodeURIComponent($('gpa').value));
  $('out').innerHTML = '<h2>history of '+esc(h.gpa)+'</h2>' + table(h.changes.map(c => ({...c, input: c.input ? c.input.type+' @'+c.input.seq : ''})), ['seq','ts','type','input','projection','change']);
  } catch(e){ $('out').textContent = e.message; } };
runs();
</script></body></html>
""";
}
