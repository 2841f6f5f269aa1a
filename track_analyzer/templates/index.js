// The library index's script: sorting by any column and filtering by top label and minimum share.
// Without it the page shows every file, in path order, and the filters stay hidden.
(function () {
  "use strict";

  document.documentElement.classList.add("js");  // shows the sort arrows (index.css)
  var table = document.getElementById("library");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);  // in the page's order: by path
  var form = document.getElementById("filters");
  var labelSel = document.getElementById("label-filter");
  var minShare = document.getElementById("min-share");
  var count = document.getElementById("count");
  form.hidden = false;
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
  });

  // A row's sort key in column k: its cell's data-sort ("" for a file that was not analyzed).
  function key(row, k) {
    var cell = row.querySelector('[data-col="' + k + '"]');
    return cell ? cell.getAttribute("data-sort") : "";
  }

  // Sort by the column of the header th: a first click sorts numbers from the largest and text
  // from A, a next click reverses the order. Equal keys keep the page's order.
  function sortBy(th) {
    var k = th.getAttribute("data-key");
    var numeric = th.hasAttribute("data-numeric");
    var cur = th.getAttribute("aria-sort");
    var dir = cur === "none" || !cur
      ? (numeric ? "descending" : "ascending")
      : (cur === "ascending" ? "descending" : "ascending");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
      if (c.hasAttribute("data-key")) {
        c.setAttribute("aria-sort", "none");
      }
    });
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var sorted = rows.slice().sort(function (a, b) {
      var x = key(a, k);
      var y = key(b, k);
      // unreadable files last, whatever the order
      if (x === "" && y !== "") {
        return 1;
      }
      if (y === "" && x !== "") {
        return -1;
      }
      var c = numeric
        ? parseFloat(x) - parseFloat(y)
        : x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
      if (c === 0) {
        c = rows.indexOf(a) - rows.indexOf(b);
      } else {
        c *= sign;
      }
      return c;
    });
    sorted.forEach(function (r) {
      body.appendChild(r);
    });
  }

  Array.prototype.forEach.call(table.querySelectorAll("th[data-key] button"), function (b) {
    b.addEventListener("click", function () {
      sortBy(b.parentNode);
    });
  });

  // Show the rows of the chosen top label ("": any) whose share is at least the minimum (in %),
  // and say how many are shown.
  function filter() {
    var label = labelSel.value;
    var min = parseFloat(minShare.value);
    if (!isFinite(min)) {
      min = 0;
    }
    var shown = 0;
    rows.forEach(function (r) {
      var ok = true;
      if (label && r.getAttribute("data-label") !== label) {
        ok = false;
      }
      var s = r.getAttribute("data-share");
      if (min > 0 && (s === "" || 100 * parseFloat(s) < min - 1e-9)) {  // 1e-9: a share equal to the minimum passes
        ok = false;
      }
      r.hidden = !ok;
      if (ok) {
        shown++;
      }
    });
    count.textContent = "Showing " + shown + " of " + rows.length + " files.";
  }

  labelSel.addEventListener("change", filter);
  minShare.addEventListener("input", filter);
  minShare.addEventListener("change", filter);
  filter();
})();
