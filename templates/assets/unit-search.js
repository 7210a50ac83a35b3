// The unit search page: loads its index (one JSON line a unit) only on that page, then lists the units whose
// layer:channel, label, classes or top image names hold every typed word; an exact layer:channel comes first.
(function () {
  var SHOWN = 50;
  function text(entry) {
    return [entry.unit, entry.label].concat(entry.raises, entry.lowers, entry.images).join(" ").toLowerCase();
  }
  function show(box, units, index) {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var list = document.getElementById("unit-search-results"), count = document.getElementById("unit-search-count");
    var found = words.length ? units.filter(function (u) {
      return words.every(function (w) { return u.text.indexOf(w) >= 0; });
    }) : [];
    found.sort(function (a, b) { return (b.entry.unit.toLowerCase() === words.join(" ")) - (a.entry.unit.toLowerCase() === words.join(" ")); });
    list.textContent = "";
    found.slice(0, SHOWN).forEach(function (u) {
      var item = document.createElement("li"), link = document.createElement("a");
      link.href = new URL(u.entry.url, index).href;
      link.textContent = u.entry.unit;
      item.appendChild(link);
      var about = [u.entry.label, u.entry.raises.length ? "raises " + u.entry.raises.join(", ") : "",
                   u.entry.lowers.length ? "lowers " + u.entry.lowers.join(", ") : ""].filter(Boolean).join(" · ");
      if (about) item.appendChild(document.createTextNode(" " + about));
      list.appendChild(item);
    });
    count.textContent = words.length ? found.length + " units" + (found.length > SHOWN ? ", the first " + SHOWN + " shown" : "") : "";
  }
  function setUp() {
    var root = document.getElementById("unit-search");
    if (!root || root.dataset.loaded) return;
    root.dataset.loaded = "yes";
    var index = new URL(root.dataset.index, window.location.href).href, box = document.getElementById("unit-search-box");
    fetch(index).then(function (r) { return r.json(); }).then(function (entries) {
      var units = entries.map(function (e) { return { entry: e, text: text(e) }; });
      box.addEventListener("input", function () { show(box, units, index); });
      show(box, units, index);
    });
  }
  if (window.document$) { window.document$.subscribe(setUp); } else { document.addEventListener("DOMContentLoaded", setUp); }
})();
