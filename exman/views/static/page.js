/* exman's page: the views of a root's runs, drawn from the payload of
   exman.views.data.payload. Every value from the runs is inserted as text
   (textContent, or escaped for plotly's labels), never as markup. */
(function () {
  "use strict";

  var CFG = JSON.parse(document.getElementById("exman-config").textContent || "{}");
  var ROW_HEIGHT = 25;
  var MAX_CURVES = 200;
  var OFF_BY_DEFAULT = ["path", "started", "finished", "duration", "host", "commit",
    "dirty", "git_dirty", "config", "config_file", "task_key", "sweep", "task"];
  var META_PARAMS = ["time"];

  var D = null;          // the payload
  var COL = {};          // column name -> index
  var S = {
    view: "table", sort: [{ col: "id", dir: 1 }], query: "", search: "",
    choice: {}, brush: {}, selected: [], runId: null,
  };
  var queryFn = null;
  var base = [];         // rows passing the query and the search
  var shown = [];        // base rows passing the brushing, sorted
  var visibleCols = [];

  // -- helpers ----------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  // plotly reads a few tags in its labels: escape every value it is given
  function ptext(v) {
    return String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      return String(Number(v.toPrecision(6)));
    }
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function key(v) { return typeof v === "object" && v !== null ? JSON.stringify(v) : String(v); }
  function col(name) { return D.columns[COL[name]]; }
  function val(row, name) { return name in COL ? row[COL[name]] : undefined; }
  function rowById(id) {
    for (var i = 0; i < D.rows.length; i++) if (D.rows[i][0] === id) return D.rows[i];
    return null;
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function names(kind) {
    return D.columns.filter(function (c) { return c.kind === kind; })
      .map(function (c) { return c.name; });
  }
  function params() {
    return names("param").filter(function (n) { return META_PARAMS.indexOf(n) < 0; });
  }
  function numericResults() {
    return names("result").filter(function (n) { return col(n).type === "number"; });
  }
  function varying(rows, name) {
    var i = COL[name], first = null;
    for (var r = 0; r < rows.length; r++) {
      var k = key(rows[r][i]);
      if (first === null) first = k; else if (k !== first) return true;
    }
    return false;
  }
  function options(select, values, keep, none) {
    var old = keep !== undefined ? keep : select.value;
    clear(select);
    if (none) select.appendChild(el("option", none)).value = "";
    values.forEach(function (v) { var o = el("option", v); o.value = v; select.appendChild(o); });
    if (old !== null && (values.indexOf(old) >= 0 || (none && old === ""))) select.value = old;
  }
  function plot(div, traces, layout) {
    if (!window.Plotly) { div.textContent = "plotly.js did not load"; return; }
    layout = Object.assign({ margin: { t: 30, r: 20, b: 50, l: 60 }, hovermode: "closest" }, layout);
    window.Plotly.react(div, traces, layout, { displaylogo: false, responsive: true });
  }

  // -- the query language of exman ls --query (a pandas query, in part) -----
  function tokenize(text) {
    var re = /\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|`([^`]*)`|(==|!=|<=|>=|<|>|\(|\)|\[|\]|,|&|\||~)|([A-Za-z_][A-Za-z0-9_.]*))/y;
    var out = [], m;
    re.lastIndex = 0;
    while (re.lastIndex < text.length) {
      if (/^\s*$/.test(text.slice(re.lastIndex))) break;
      var at = re.lastIndex;
      m = re.exec(text);
      if (!m) throw new Error("cannot read the query at: " + text.slice(at));
      if (m[1] !== undefined) out.push({ t: "val", v: Number(m[1]) });
      else if (m[2] !== undefined) out.push({ t: "val", v: m[2].slice(1, -1).replace(/\\(.)/g, "$1") });
      else if (m[3] !== undefined) out.push({ t: "name", v: m[3] });
      else if (m[4] !== undefined) out.push({ t: "op", v: m[4] });
      else {
        var w = m[5];
        if (["and", "or", "not", "in"].indexOf(w) >= 0) out.push({ t: "op", v: w });
        else if (w === "True" || w === "true") out.push({ t: "val", v: true });
        else if (w === "False" || w === "false") out.push({ t: "val", v: false });
        else if (w === "None" || w === "null") out.push({ t: "val", v: null });
        else out.push({ t: "name", v: w });
      }
    }
    return out;
  }
  function compileQuery(text) {
    var toks = tokenize(text), i = 0;
    function peek(v) { return toks[i] && toks[i].t === "op" && toks[i].v === v; }
    function expect(v) { if (!peek(v)) throw new Error("expected '" + v + "'"); i++; }
    function orE() {
      var a = andE();
      while (peek("or") || peek("|")) { i++; a = (function (x, y) { return function (r) { return x(r) || y(r); }; })(a, andE()); }
      return a;
    }
    function andE() {
      var a = notE();
      while (peek("and") || peek("&")) { i++; a = (function (x, y) { return function (r) { return x(r) && y(r); }; })(a, notE()); }
      return a;
    }
    function notE() {
      if (peek("not") || peek("~")) { i++; var a = notE(); return function (r) { return !a(r); }; }
      return cmpE();
    }
    function cmpE() {
      var a = atom(), ops = ["==", "!=", "<", "<=", ">", ">="];
      var t = toks[i];
      if (t && t.t === "op" && ops.indexOf(t.v) >= 0) {
        i++; var b = atom(), op = t.v;
        return function (r) { return compare(a(r), op, b(r)); };
      }
      if (peek("in") || (peek("not") && toks[i + 1] && toks[i + 1].v === "in")) {
        var neg = peek("not"); i += neg ? 2 : 1;
        var list = atom();
        return function (r) {
          var x = a(r), l = list(r);
          var hit = Array.isArray(l) && l.some(function (y) { return compare(x, "==", y); });
          return neg ? !hit : hit;
        };
      }
      return function (r) { var v = a(r); return !!v; };
    }
    function atom() {
      var t = toks[i++];
      if (!t) throw new Error("the query ends too soon");
      if (t.t === "val") return function () { return t.v; };
      if (t.t === "name") {
        if (!(t.v in COL)) throw new Error("no column '" + t.v + "'; the columns are " + D.columns.map(function (c) { return c.name; }).join(", "));
        var c = COL[t.v];
        return function (r) { return r[c]; };
      }
      if (t.v === "(") { var e = orE(); expect(")"); return e; }
      if (t.v === "[") {
        var items = [];
        while (!peek("]")) { items.push(atom()); if (peek(",")) i++; else if (!peek("]")) throw new Error("expected ',' or ']'"); }
        i++;
        return function (r) { return items.map(function (f) { return f(r); }); };
      }
      throw new Error("unexpected '" + t.v + "'");
    }
    var fn = orE();
    if (i < toks.length) throw new Error("unexpected '" + toks[i].v + "'");
    return fn;
  }
  function compare(a, op, b) {
    if (op === "==") return a === b || (a !== null && b !== null && typeof a === "object" && key(a) === key(b));
    if (op === "!=") return !compare(a, "==", b);
    if (a === null || b === null || a === undefined || b === undefined) return false;
    if (op === "<") return a < b;
    if (op === "<=") return a <= b;
    if (op === ">") return a > b;
    return a >= b;
  }

  // -- filtering and sorting --------------------------------------------------
  function refilter() {
    var search = S.search.toLowerCase();
    base = D.rows.filter(function (r) {
      if (queryFn && !queryFn(r)) return false;
      if (search) {
        var hit = false;
        for (var c = 0; c < r.length && !hit; c++) if (fmt(r[c]).toLowerCase().indexOf(search) >= 0) hit = true;
        if (!hit) return false;
      }
      return true;
    });
    applyBrush();
  }
  function brushPass(r) {
    for (var name in S.brush) {
      var ranges = S.brush[name], v = val(r, name);
      if (!ranges || !ranges.length) continue;
      var x = col(name).type === "number" ? v : brushCategories(name).indexOf(key(v));
      if (!isNum(x)) return false;
      if (!ranges.some(function (lr) { return x >= lr[0] && x <= lr[1]; })) return false;
    }
    return true;
  }
  function applyBrush() {
    shown = base.filter(brushPass);
    sortRows();
    $("clear-brush").hidden = Object.keys(S.brush).length === 0;
    $("count").textContent = shown.length + " of " + D.rows.length + " runs";
    computeColumns();
  }
  function cmpValues(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return key(a).localeCompare(key(b), undefined, { numeric: true });
  }
  function sortRows() {
    var keys = S.sort.filter(function (s) { return s.col in COL; });
    shown.sort(function (x, y) {
      for (var k = 0; k < keys.length; k++) {
        var i = COL[keys[k].col], a = x[i], b = y[i];
        var c = cmpValues(a, b);
        if (c !== 0) return (a === null || a === undefined || b === null || b === undefined) ? c : c * keys[k].dir;
      }
      return x[0] - y[0];
    });
  }

  // -- the runs table ---------------------------------------------------------
  function computeColumns() {
    visibleCols = D.columns.map(function (c) { return c.name; }).filter(function (n) {
      if (n in S.choice) return S.choice[n];
      if (n === "id" || n === "status") return true;
      if (OFF_BY_DEFAULT.indexOf(n) >= 0) return false;
      return shown.length < 2 || varying(shown, n);
    });
    var list = $("column-list");
    clear(list);
    D.columns.forEach(function (c) {
      var label = el("label"), box = el("input");
      box.type = "checkbox";
      box.checked = visibleCols.indexOf(c.name) >= 0;
      box.dataset.column = c.name;
      box.addEventListener("change", function () {
        S.choice[c.name] = box.checked; computeColumns(); renderTable(true);
      });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + c.name + (varying(shown, c.name) ? "" : " (constant)")));
      list.appendChild(label);
    });
  }
  function renderHead() {
    var thead = $("runs").tHead;
    clear(thead);
    var tr = el("tr");
    tr.appendChild(el("th", "✓"));
    visibleCols.forEach(function (n) {
      var th = el("th", n);
      th.dataset.column = n;
      var s = S.sort.length && S.sort[0].col === n ? S.sort[0] : null;
      if (s) th.className = s.dir > 0 ? "sorted-asc" : "sorted-desc";
      th.addEventListener("click", function (ev) {
        var at = -1;
        S.sort.forEach(function (x, j) { if (x.col === n) at = j; });
        if (ev.shiftKey) {
          if (at >= 0) S.sort[at].dir *= -1; else S.sort.push({ col: n, dir: 1 });
        } else {
          S.sort = [{ col: n, dir: at === 0 ? -S.sort[0].dir : 1 }];
        }
        sortRows(); renderTable(true);
      });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
  }
  function renderTable(head) {
    if (head) renderHead();
    var scroll = $("table-scroll"), tbody = $("runs").tBodies[0];
    var first = Math.max(0, Math.floor(scroll.scrollTop / ROW_HEIGHT) - 5);
    var count = Math.ceil(scroll.clientHeight / ROW_HEIGHT) + 15;
    var last = Math.min(shown.length, first + count);
    clear(tbody);
    var top = el("tr"); top.style.height = (first * ROW_HEIGHT) + "px"; top.className = "spacer";
    tbody.appendChild(top);
    for (var i = first; i < last; i++) tbody.appendChild(renderRow(shown[i]));
    var bottom = el("tr"); bottom.style.height = ((shown.length - last) * ROW_HEIGHT) + "px";
    bottom.className = "spacer";
    tbody.appendChild(bottom);
  }
  function renderRow(r) {
    var tr = el("tr"), id = r[0];
    tr.dataset.id = id;
    if (S.selected.indexOf(id) >= 0) tr.className = "selected";
    var td = el("td"), box = el("input");
    box.type = "checkbox"; box.checked = S.selected.indexOf(id) >= 0;
    box.setAttribute("aria-label", "select run " + id);
    box.addEventListener("change", function () { toggleSelect(id, box.checked); });
    td.appendChild(box); tr.appendChild(td);
    visibleCols.forEach(function (n) {
      var v = r[COL[n]], c = col(n), cell = el("td");
      if (n === "id") {
        var b = el("button", String(v), "open"); b.type = "button";
        b.addEventListener("click", function () { openRun(id); });
        cell.appendChild(b);
      } else if (n === "status" && v) {
        cell.appendChild(el("span", v, "status st-" + String(v).replace(/[^a-z]/g, "")));
      } else {
        cell.textContent = fmt(v);
        cell.title = cell.textContent;
      }
      if (c.type === "number") cell.classList.add("num");
      tr.appendChild(cell);
    });
    return tr;
  }
  function toggleSelect(id, on) {
    S.selected = S.selected.filter(function (x) { return x !== id; });
    if (on) S.selected.push(id);
    var n = S.selected.length;
    $("selection").textContent = n ? n + " selected: " + S.selected.join(", ") : "";
    renderTable(false);
  }

  // -- parallel coordinates ------------------------------------------------
  var pcDims = [];
  function brushCategories(name) {
    var seen = {}, out = [];
    D.rows.forEach(function (r) { var k = key(val(r, name)); if (!(k in seen)) { seen[k] = 1; out.push(k); } });
    return out.sort(function (a, b) { return a.localeCompare(b, undefined, { numeric: true }); });
  }
  function renderParcoords() {
    var results = numericResults();
    options($("pc-color"), results);
    var colour = $("pc-color").value;
    var dimsNames = params().filter(function (n) {
      return varying(base, n) && (col(n).type === "number" || brushCategories(n).length <= 60);
    });
    if (colour) dimsNames.push(colour);
    pcDims = dimsNames;
    var rows = base;
    var dims = dimsNames.map(function (n) {
      var d = { label: ptext(n) };
      if (col(n).type === "number") {
        d.values = rows.map(function (r) { var v = val(r, n); return isNum(v) ? v : NaN; });
      } else {
        var cats = brushCategories(n);
        d.values = rows.map(function (r) { return cats.indexOf(key(val(r, n))); });
        d.tickvals = cats.map(function (_, j) { return j; });
        d.ticktext = cats;  // parcoords sets tick labels as plain text
        d.range = [0, Math.max(1, cats.length - 1)];
      }
      if (S.brush[n]) d.constraintrange = S.brush[n].length === 1 ? S.brush[n][0] : S.brush[n];
      return d;
    });
    var line = {};
    if (colour) {
      line = { color: rows.map(function (r) { var v = val(r, colour); return isNum(v) ? v : NaN; }),
        colorscale: "Viridis", showscale: true };
    }
    var div = $("pc-plot");
    if (!dims.length) { div.textContent = "no parameter varies between the runs shown"; return; }
    plot(div, [{ type: "parcoords", dimensions: dims, line: line }], { margin: { t: 60, l: 60, r: 60, b: 30 } });
    if (!div.dataset.hooked && div.on) {
      div.dataset.hooked = "1";
      div.on("plotly_restyle", function () { readBrush(div); });
    }
  }
  function readBrush(div) {
    var trace = div.data && div.data[0];
    if (!trace) return;
    var brush = {};
    trace.dimensions.forEach(function (d, j) {
      var cr = d.constraintrange, n = pcDims[j];
      if (!cr || !cr.length) return;
      brush[n] = Array.isArray(cr[0]) ? cr : [cr];
    });
    S.brush = brush;
    applyBrush();
    renderTable(true);
  }

  // -- interest ~ parameter ---------------------------------------------------
  function stats(ys) {
    var n = ys.length, mean = ys.reduce(function (a, b) { return a + b; }, 0) / n;
    var sd = n > 1 ? Math.sqrt(ys.reduce(function (a, y) { return a + (y - mean) * (y - mean); }, 0) / (n - 1)) : 0;
    var q = D.t975;  // 1 to 30 degrees of freedom, then the normal quantile
    var t = n > 1 ? q[Math.min(n - 2, q.length - 1)] : 0;
    return { n: n, mean: mean, std: sd, ci95: t * sd / Math.sqrt(n) };
  }
  function renderInterest() {
    var ps = params();
    options($("in-y"), numericResults());
    var pv = ps.filter(function (n) { return varying(shown, n); });
    var xdefault = pv.length ? pv[0] : (ps[0] || "");
    options($("in-x"), ps, $("in-x").value || xdefault);
    options($("in-by"), ps, $("in-by").value, "(none)");
    var y = $("in-y").value, x = $("in-x").value, by = $("in-by").value, band = $("in-band").value;
    var div = $("in-plot");
    if (!y || !x) { div.textContent = "no result to draw"; return; }
    var groups = {}, order = [];
    shown.forEach(function (r) {
      var yv = val(r, y);
      if (!isNum(yv)) return;
      var g = by ? key(val(r, by)) : "all";
      if (!(g in groups)) { groups[g] = {}; order.push(g); }
      var xv = val(r, x), xk = key(xv);
      (groups[g][xk] = groups[g][xk] || { x: xv, ys: [] }).ys.push(yv);
    });
    order.sort(function (a, b) { return a.localeCompare(b, undefined, { numeric: true }); });
    var total = 0, points = 0;
    var traces = order.map(function (g) {
      var pts = Object.keys(groups[g]).map(function (k) { return groups[g][k]; });
      pts.sort(function (a, b) { return cmpValues(a.x, b.x); });
      var st = pts.map(function (p) { return stats(p.ys); });
      st.forEach(function (s) { total += s.n; points += 1; });
      var tr = {
        type: "scatter", mode: "lines+markers+text", name: by ? ptext(by + "=" + g) : ptext(y),
        x: pts.map(function (p) { return typeof p.x === "object" ? key(p.x) : p.x; }),
        y: st.map(function (s) { return s.mean; }),
        text: st.map(function (s) { return "n=" + s.n; }), textposition: "top center",
        hovertext: st.map(function (s) { return ptext(y) + " " + fmt(s.mean) + " ± " + fmt(s[band === "ci95" ? "ci95" : "std"]) + " (n=" + s.n + ")"; }),
        hoverinfo: "text+name",
        meta: st.map(function (s) { return s.n; }),
      };
      if (band !== "none") {
        tr.error_y = { type: "data", visible: true, array: st.map(function (s) { return band === "ci95" ? s.ci95 : s.std; }) };
      }
      return tr;
    });
    $("in-note").textContent = points + " points from " + total + " runs: the mean of the runs with the same " +
      x + (by ? " and " + by : "") + (band === "none" ? "" : ", with " + (band === "ci95" ? "a 95% confidence interval" : "the standard deviation"));
    plot(div, traces, {
      xaxis: { title: { text: ptext(x) }, type: $("in-logx").checked ? "log" : "-" },
      yaxis: { title: { text: ptext(y) } }, showlegend: !!by,
    });
  }

  // -- curves -------------------------------------------------------------------
  function smooth(ys, w) {
    if (!w) return ys;
    var out = [], last = 0, n = 0;
    ys.forEach(function (y) { last = last * w + (1 - w) * y; n += 1; out.push(last / (1 - Math.pow(w, n))); });
    return out;
  }
  function curveRuns() {
    var ids = S.selected.length ? S.selected.slice() : shown.map(function (r) { return r[0]; });
    return ids;
  }
  function renderCurves() {
    options($("cu-metric"), D.metrics);
    options($("cu-over"), params(), $("cu-over").value || D.over || "", "(none)");
    var metric = $("cu-metric").value, mode = $("cu-mode").value, w = Number($("cu-smooth").value);
    var div = $("cu-plot");
    if (!metric) { div.textContent = "the runs logged no metrics (exman.log)"; $("cu-note").textContent = ""; return; }
    var curves = part("curves")[metric] || {};
    var ids = curveRuns().filter(function (id) { return String(id) in curves; });
    var cut = ids.length > MAX_CURVES;
    if (cut) ids = ids.slice(0, MAX_CURVES);
    var traces = [];
    var note = (S.selected.length ? "the selected runs" : "the runs shown") + ": " + ids.length + " curves";
    if (mode === "overlay") {
      // WebGL for many curves; SVG (crisper, and countable) for a few
      var kind = ids.length > 50 ? "scattergl" : "scatter";
      ids.forEach(function (id) {
        var c = curves[String(id)];
        traces.push({ type: kind, mode: "lines", name: "run " + id, x: c[0], y: smooth(c[1], w) });
      });
    } else {
      var over = $("cu-over").value;
      var others = params().filter(function (n) { return n !== over && varying(shown, n); });
      var groups = {}, order = [];
      ids.forEach(function (id) {
        var r = rowById(id);
        var g = others.map(function (n) { return n + "=" + fmt(val(r, n)); }).join(", ") || "all runs";
        if (!(g in groups)) { groups[g] = []; order.push(g); }
        groups[g].push(curves[String(id)]);
      });
      order.forEach(function (g) {
        var at = {};
        groups[g].forEach(function (c) {
          var ys = smooth(c[1], w);
          c[0].forEach(function (s, j) { (at[s] = at[s] || []).push(ys[j]); });
        });
        var steps = Object.keys(at).map(Number).sort(function (a, b) { return a - b; });
        var st = steps.map(function (s) { return stats(at[s]); });
        var mean = st.map(function (s) { return s.mean; });
        var name = ptext(g) + " (n=" + groups[g].length + ")";
        traces.push({ type: "scatter", mode: "lines", x: steps, y: mean.map(function (m, j) { return m + st[j].std; }),
          line: { width: 0 }, showlegend: false, hoverinfo: "skip", legendgroup: g });
        traces.push({ type: "scatter", mode: "lines", x: steps, y: mean.map(function (m, j) { return m - st[j].std; }),
          line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(100,100,200,0.15)", showlegend: false,
          hoverinfo: "skip", legendgroup: g });
        traces.push({ type: "scatter", mode: "lines", name: name, x: steps, y: mean, legendgroup: g });
      });
      note += " in " + order.length + " groups (mean ± std over " + (over || "the runs of a group") + ")";
    }
    if (cut) note += "; only the first " + MAX_CURVES + " are drawn: select runs or filter";
    $("cu-note").textContent = note;
    plot(div, traces, {
      xaxis: { title: { text: "step" } }, yaxis: { title: { text: ptext(metric) }, type: $("cu-log").checked ? "log" : "linear" },
    });
  }

  // -- one run ----------------------------------------------------------------
  function kv(rows, head) {
    var t = el("table", null, "kv");
    if (head) {
      var h = el("tr"); head.forEach(function (x) { h.appendChild(el("th", x)); }); t.appendChild(h);
    }
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) {
        var td = el("td");
        if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined ? "" : fmt(c);
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    return t;
  }
  function fileUrl(path, file) {
    return "files/" + (path + "/" + file).split("/").map(encodeURIComponent).join("/");
  }
  var runTimer = null;
  function openRun(id) {
    S.runId = id;
    show("run");
  }
  function details(id, done) {
    if (CFG.live) {
      fetch("api/run/" + encodeURIComponent(id)).then(function (r) {
        if (!r.ok) throw new Error("run " + id + ": " + r.status);
        return r.json();
      }).then(done, function (e) { $("run-note").textContent = String(e.message || e); });
    } else {
      done(part("details")[String(id)] || null);
    }
  }
  function renderRun() {
    var body = $("run-body");
    if (runTimer) { clearTimeout(runTimer); runTimer = null; }
    if (S.runId === null && shown.length) S.runId = shown[0][0];
    var id = S.runId, r = rowById(id);
    if (id !== null) $("run-id").value = String(id);
    $("run-note").textContent = r ? "" : (id === null ? "no runs" : "no run " + id + " here");
    if (!r) { clear(body); return; }
    details(id, function (d) {
      if (S.runId !== id || S.view !== "run") return;
      clear(body);
      var status = val(r, "status");
      body.appendChild(el("h2", "run " + id + (d ? "  " + d.name : "")));
      var st = el("span", status || "", "status st-" + String(status || "").replace(/[^a-z]/g, ""));
      st.id = "run-status";
      var rec = (d && d.record) || {};
      var info = [["status", st], ["place", d ? d.place : ""], ["started", rec.started], ["finished", rec.finished],
        ["duration", rec.duration === undefined ? "" : rec.duration + " s"], ["host", rec.host === undefined ? "" : rec.host + " (pid " + rec.pid + ")"],
        ["marks", (val(r, "marks") || []).join(", ")], ["path", val(r, "path")]];
      if (val(r, "error")) info.push(["error", val(r, "error")]);
      if ("commit" in COL) info.push(["git", fmt(val(r, "commit")) + (val(r, "dirty") ? " (dirty)" : "")]);
      if (d && d.command) info.push(["command", d.command]);
      if (d && d.cwd) info.push(["in", d.cwd]);
      if (d) info.push(["re-run", d.rerun]);
      body.appendChild(kv(info));
      body.appendChild(el("h2", "parameters"));
      body.appendChild(kv(params().map(function (n) { return [n, val(r, n)]; })));
      var res = names("result");
      if (res.length) {
        body.appendChild(el("h2", "results"));
        body.appendChild(kv(res.map(function (n) { return [n, val(r, n)]; })));
      }
      if (!d) return;
      body.appendChild(el("h2", "files (" + (d.files.length + d.more_files) + ")"));
      body.appendChild(kv(d.files.map(function (f) {
        var name = f[0];
        if (CFG.live) { var a = el("a", name); a.href = fileUrl(val(r, "path"), name); a.target = "_blank"; name = a; }
        return [name, f[1] + " B"];
      })));
      if (d.diff) { body.appendChild(el("h2", "git diff")); body.appendChild(el("pre", d.diff)); }
      if (d.traceback) { body.appendChild(el("h2", "traceback")); body.appendChild(el("pre", d.traceback)); }
      body.appendChild(el("h2", "log (last " + d.log.length + " lines)"));
      var log = el("pre", d.log.join("\n")); log.id = "run-log";
      body.appendChild(log);
      if (CFG.live && (rec.status === "running" || status === "running")) {
        runTimer = setTimeout(renderRun, CFG.poll || 2000);
      }
    });
  }

  // -- two runs ---------------------------------------------------------------
  function renderCompare() {
    var body = $("cmp-body"), div = $("cmp-plot");
    clear(body);
    var pick = S.selected.slice(-2);
    if (pick.length < 2) {
      body.appendChild(el("p", "Tick two runs in the Runs table to compare them."));
      if (window.Plotly) window.Plotly.purge(div);
      return;
    }
    var a = rowById(pick[0]), b = rowById(pick[1]);
    if (!a || !b) { body.appendChild(el("p", "a selected run is gone")); return; }
    body.appendChild(el("h2", "parameters that differ"));
    var diff = params().concat(["commit", "dirty"]).filter(function (n) { return n in COL && key(val(a, n)) !== key(val(b, n)); });
    var t = kv(diff.map(function (n) { return [n, val(a, n), val(b, n)]; }), ["parameter", "run " + pick[0], "run " + pick[1]]);
    t.id = "cmp-params"; body.appendChild(t);
    if (!diff.length) body.appendChild(el("p", "none: the runs have the same parameters"));
    body.appendChild(el("h2", "results"));
    var rows = names("result").map(function (n) {
      var x = val(a, n), y = val(b, n), delta = "";
      if (isNum(x) && isNum(y)) {
        delta = el("span", (y - x >= 0 ? "+" : "") + fmt(y - x) + (x !== 0 ? " (" + (y - x >= 0 ? "+" : "") + fmt(100 * (y - x) / Math.abs(x)) + "%)" : ""),
          y > x ? "delta-up" : y < x ? "delta-down" : "");
      }
      return [n, x, y, delta];
    });
    rows.push(["status", val(a, "status"), val(b, "status"), ""]);
    var r = kv(rows, ["result", "run " + pick[0], "run " + pick[1], "difference"]);
    r.id = "cmp-results"; body.appendChild(r);
    var traces = [];
    D.metrics.forEach(function (m) {
      pick.forEach(function (id, j) {
        var c = (part("curves")[m] || {})[String(id)];
        if (c) traces.push({ type: "scatter", mode: "lines", name: ptext("run " + id + ": " + m), x: c[0], y: c[1],
          line: { dash: j ? "dash" : "solid" } });
      });
    });
    if (traces.length) plot(div, traces, { xaxis: { title: { text: "step" } } });
    else if (window.Plotly) window.Plotly.purge(div);
  }

  // -- views and data -----------------------------------------------------------
  var RENDER = { table: function () { renderTable(true); }, parcoords: renderParcoords,
    interest: renderInterest, curves: renderCurves, run: renderRun, compare: renderCompare };
  function show(view) {
    S.view = view;
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.classList.toggle("active", b.dataset.view === view);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".view"), function (v) {
      v.classList.toggle("active", v.id === "view-" + view);
    });
    RENDER[view]();
    document.body.dataset.view = view;
  }
  // the report keeps the curves and the details in elements of their own,
  // read when a view first needs them: the table shows without them
  function part(name) {
    if (D[name] === undefined) {
      var node = $("exman-" + name);
      D[name] = node && node.textContent ? JSON.parse(node.textContent) : {};
    }
    return D[name];
  }
  function setData(data) {
    if (!data || data.format !== 1) { document.body.textContent = "exman: this page cannot read its data"; return; }
    D = data;
    COL = {};
    D.columns.forEach(function (c, i) { COL[c.name] = i; });
    $("root-name").textContent = D.root;
    $("generated").textContent = (CFG.live ? "updated " : "written ") + D.generated;
    setQuery(S.query);
    refilter();
    S.selected = S.selected.filter(function (id) { return rowById(id) !== null; });
    RENDER[S.view]();
    document.body.dataset.ready = String(Number(document.body.dataset.ready || 0) + 1);
    if (window.exmanDrawnMs === undefined) {
      // when the first view is on the screen, from the start of the load
      window.exmanDrawnMs = null;
      requestAnimationFrame(function () {
        setTimeout(function () { window.exmanDrawnMs = performance.now(); }, 0);
      });
    }
  }
  function setQuery(text) {
    S.query = text;
    try { queryFn = text.trim() ? compileQuery(text) : null; $("query-error").textContent = ""; }
    catch (e) { queryFn = function () { return false; }; $("query-error").textContent = "query: " + e.message; }
  }
  var etag = null;
  function poll() {
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch("api/payload", { headers: headers, cache: "no-store" }).then(function (r) {
      if (r.status === 304) return null;
      if (!r.ok) throw new Error("the server answered " + r.status);
      etag = r.headers.get("ETag");
      return r.json();
    }).then(function (data) {
      $("live-state").textContent = "live";
      if (data) setData(data);
    }, function (e) {
      $("live-state").textContent = "not connected: " + (e.message || e);
    }).then(function () { setTimeout(poll, CFG.poll || 2000); });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.addEventListener("click", function () { show(b.dataset.view); });
    });
    $("query").addEventListener("change", function () { setQuery($("query").value); refilter(); RENDER[S.view](); });
    $("search").addEventListener("input", function () { S.search = $("search").value; refilter(); RENDER[S.view](); });
    $("clear-brush").addEventListener("click", function () { S.brush = {}; applyBrush(); RENDER[S.view](); });
    $("table-scroll").addEventListener("scroll", function () { renderTable(false); });
    ["pc-color"].forEach(function (id) { $(id).addEventListener("change", renderParcoords); });
    ["in-y", "in-x", "in-by", "in-band", "in-logx"].forEach(function (id) { $(id).addEventListener("change", renderInterest); });
    ["cu-metric", "cu-mode", "cu-over", "cu-log", "cu-smooth"].forEach(function (id) {
      $(id).addEventListener("change", renderCurves); $(id).addEventListener("input", renderCurves);
    });
    $("run-id").addEventListener("change", function () {
      var n = Number($("run-id").value);
      S.runId = Number.isInteger(n) ? n : null; renderRun();
    });
    if (CFG.live) poll();
    else setData(JSON.parse($("exman-data").textContent));
  }
  init();
})();
