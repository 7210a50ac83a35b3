// Tables inside <div class="sortable">: a click on a column's header sorts the rows by it (numbers by value,
// "12.5%" as 12.5; a second click reverses). Runs on every page MkDocs Material shows, instant loading too.
(function () {
  function key(cell) {
    var text = cell.textContent.trim(), value = parseFloat(text.replace("%", ""));
    return isNaN(value) ? text.toLowerCase() : value;
  }
  function sortBy(table, column, header) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var down = header.getAttribute("aria-sort") !== "descending";
    rows.sort(function (a, b) {
      var x = key(a.cells[column]), y = key(b.cells[column]);
      return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", down ? "descending" : "ascending");
  }
  function setUp() {
    document.querySelectorAll(".sortable table").forEach(function (table) {
      if (!table.tHead || table.dataset.sortable) return;
      table.dataset.sortable = "yes";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
        header.style.cursor = "pointer";
        header.addEventListener("click", function () { sortBy(table, column, header); });
      });
    });
  }
  if (window.document$) { window.document$.subscribe(setUp); } else { document.addEventListener("DOMContentLoaded", setUp); }
})();
