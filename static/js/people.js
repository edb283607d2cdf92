// Personer tab: add one more person row, and show the rights the chosen packages or permissions give.
(function () {
  "use strict";
  var addRow = document.getElementById("add-row");
  if (addRow) {
    addRow.addEventListener("click", function () {
      var body = document.querySelector("#people-rows tbody");
      var row = body.rows[body.rows.length - 1].cloneNode(true);
      Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) { input.value = ""; });
      body.appendChild(row);
      row.querySelector("input").focus();
    });
  }
  var fields = document.getElementById("access-fields");
  if (!fields) { return; }
  var rights = JSON.parse(fields.dataset.rights || "{}");
  var names = JSON.parse(fields.dataset.permissionNames || "{}");
  var list = document.getElementById("resulting-rights");
  // A select (the main package) or a checkbox list (add-ons, single permissions).
  function selected(element) {
    if (element.tagName === "SELECT") {
      return Array.prototype.filter.call(element.options, function (o) { return o.selected && o.value; })
        .map(function (o) { return o.value; });
    }
    return Array.prototype.map.call(element.querySelectorAll("input:checked"), function (o) { return o.value; });
  }
  function update() {
    var result = {};
    var packages = selected(document.getElementById("main_package")).concat(selected(document.getElementById("addon_packages")));
    packages.forEach(function (id) { (rights[id] || []).forEach(function (name) { result[name] = true; }); });
    selected(document.getElementById("permissions")).forEach(function (id) { result[names[id]] = true; });
    list.innerHTML = "";
    Object.keys(result).sort().forEach(function (name) {
      var item = document.createElement("li");
      item.textContent = name;
      list.appendChild(item);
    });
  }
  fields.addEventListener("change", update);
  update();
})();
