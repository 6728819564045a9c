(function(){
  function key(td){
    var v = td.hasAttribute('data-v') ? td.getAttribute('data-v') : td.textContent.trim();
    var n = parseFloat(v);
    return (v !== '' && isFinite(n)) ? {n: n, s: ''} : {n: null, s: v.toLowerCase()};
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('thead th').forEach(function(th, i){
      th.addEventListener('click', function(){
        var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
        table.querySelectorAll('thead th').forEach(function(h){ h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir);
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function(a, b){
          var x = key(a.cells[i]), y = key(b.cells[i]), c;
          if (x.n !== null && y.n !== null) c = x.n - y.n;
          else if (x.n !== null) return -1;  /* numbers first, n/a last in both directions */
          else if (y.n !== null) return 1;
          else c = x.s.localeCompare(y.s);
          return dir === 'asc' ? c : -c;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
  var exp = document.getElementById('filter-experiment'), st = document.getElementById('filter-status');
  function filter(){
    var q = exp.value.trim().toLowerCase(), s = st.value;
    document.querySelectorAll('tr[data-experiment]').forEach(function(r){
      r.hidden = !((!q || r.getAttribute('data-experiment').toLowerCase().indexOf(q) >= 0) &&
                   (!s || r.getAttribute('data-status') === s));
    });
  }
  if (exp && st) { exp.addEventListener('input', filter); st.addEventListener('change', filter); }
})();
