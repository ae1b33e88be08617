"""The cohort report's style sheet and script (plain CSS and vanilla JavaScript, inlined).

The script sorts a ``table.sortable`` by the clicked column (numbers by their ``data-v``,
text otherwise; a second click reverses), filters the studies and the per-level rows by the
flag, level and subject controls (kept in the address: ``#flag=failed&level=L3``), opens a
thumbnail's full picture over the page (a click or Escape closes it), and marks the body
``data-ready`` once it has run, so a headless browser can tell.
"""

PAGE_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em 2em;color:#222}
h1{margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
.meta{color:#666;font-size:.9em}
.controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;
z-index:2}.controls label{margin-right:1.2em}#f-count{color:#666}
table{border-collapse:collapse;font-size:.85em}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 7px;text-align:left;vertical-align:middle}
th{background:#f4f4f4;cursor:pointer;user-select:none;white-space:nowrap}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}
td[data-v]{text-align:right;font-variant-numeric:tabular-nums}
tr[hidden]{display:none}
img.thumb{width:180px;cursor:zoom-in;display:block}
img.figure{max-width:100%}
.flag{display:inline-block;border-radius:3px;padding:0 4px;margin:1px;font-size:.85em;
background:#e8e8e8;white-space:nowrap}
.flag.r0{background:#d62728;color:#fff}.flag.r1{background:#ff9896}
.flag.r2,.flag.r3{background:#ffbb78}.flag.r4{background:#fde68a}
.flag.r5,.flag.r6{background:#c5b0d5}
.s-error{color:#d62728;font-weight:bold}.s-pending{color:#8c564b}
td.outlier{background:#fde2e2;font-weight:bold}
td.note{max-width:28em;color:#a33}
#overlay{position:fixed;inset:0;background:rgba(0,0,0,.85);display:flex;
align-items:center;justify-content:center;z-index:9;cursor:zoom-out}
#overlay[hidden]{display:none}#overlay img{max-width:96vw;max-height:96vh}
"""

PAGE_SCRIPT = """
(function () {
  var flag = document.getElementById('f-flag'), level = document.getElementById('f-level'),
      subject = document.getElementById('f-subject'), count = document.getElementById('f-count');
  function has(list, word) { return (' ' + list + ' ').indexOf(' ' + word + ' ') >= 0; }
  function matches(tr, s) { return !s || tr.dataset.subject.toLowerCase().indexOf(s) >= 0; }
  function keepStudy(tr, f, l, s) {  // a flag with a level: the study has it at that level
    var flagged = f && f !== 'none';
    if (f === 'none' && tr.dataset.flags !== '') return false;
    if (flagged && !has(l ? tr.dataset.tags : tr.dataset.flags, l ? f + ':' + l : f)) {
      return false;
    }
    if (l && !flagged && !has(tr.dataset.levels, l)) return false;
    return matches(tr, s);
  }
  function keepRow(tr, f, l, s) {
    if (f === 'none' ? tr.dataset.flags !== '' : f && !has(tr.dataset.flags, f)) return false;
    if (l && tr.dataset.level !== l) return false;
    return matches(tr, s);
  }
  function apply() {
    var f = flag.value, l = level.value, s = subject.value.trim().toLowerCase(), shown = 0;
    document.querySelectorAll('#studies tbody tr').forEach(function (tr) {
      tr.hidden = !keepStudy(tr, f, l, s); if (!tr.hidden) shown += 1;
    });
    document.querySelectorAll('#levels tbody tr').forEach(function (tr) {
      tr.hidden = !keepRow(tr, f, l, s);
    });
    count.textContent = shown + ' of ' +
      document.querySelectorAll('#studies tbody tr').length + ' studies shown';
    var hash = new URLSearchParams();
    if (f) hash.set('flag', f); if (l) hash.set('level', l); if (s) hash.set('subject', s);
    try { history.replaceState(null, '', '#' + hash.toString()); } catch (e) { /* file: */ }
  }
  function sortBy(th) {
    var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
    var dir = th.classList.contains('asc') ? -1 : 1;
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(dir === 1 ? 'asc' : 'desc');
    function key(tr) {
      var td = tr.cells[col], v = td.dataset.v;
      if (v !== undefined) return v === '' ? Infinity : parseFloat(v);
      return td.textContent.trim().toLowerCase();
    }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach(function (tr) { body.appendChild(tr); });
  }
  document.querySelectorAll('table.sortable th').forEach(function (th) {
    th.addEventListener('click', function () { sortBy(th); });
  });
  var overlay = document.getElementById('overlay');
  document.querySelectorAll('img.thumb').forEach(function (img) {
    img.addEventListener('click', function () {
      overlay.querySelector('img').src = img.dataset.full; overlay.hidden = false;
    });
  });
  overlay.addEventListener('click', function () { overlay.hidden = true; });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') overlay.hidden = true;
  });
  var given = new URLSearchParams(location.hash.slice(1));
  flag.value = given.get('flag') || ''; level.value = given.get('level') || '';
  subject.value = given.get('subject') || '';
  [flag, level].forEach(function (c) { c.addEventListener('change', apply); });
  subject.addEventListener('input', apply);
  apply();
  document.body.dataset.ready = 'yes';
})();
"""
