// "+ Ny kunde": look the company up in the register while typing, fill the form from the chosen match,
// and offer the register's daglig leder / styreleder as contact person. Every field stays editable, and
// when the register is down the form keeps working by hand.
(function () {
  "use strict";
  var form = document.getElementById("new-client-form");
  if (!form) { return; }
  var input = document.getElementById("company_query");
  var list = document.getElementById("company-suggestions");
  var status = document.getElementById("registry-status");
  var roleBox = document.getElementById("role-suggestions");
  var msg = form.dataset;
  var statusLabels = JSON.parse(msg.statusLabels || "{}");
  var results = [];
  var active = -1;
  var timer = null;
  var latest = 0;

  function setStatus(text, kind) {
    status.textContent = text || "";
    status.className = "form-text" + (kind ? " text-" + kind : "");
  }

  function close() {
    list.hidden = true;
    list.innerHTML = "";
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function describe(record) {
    var address = record.business_address || record.postal_address;
    var place = address ? [address.postal_code, address.city].filter(Boolean).join(" ") : "";
    return [record.org_number, record.organisation_form, place].filter(Boolean).join(" · ");
  }

  // "Finnes allerede: åpne": the bureau has a client with this number; the link opens it.
  function existingNote(record, className) {
    var note = document.createElement("span");
    note.className = className;
    note.appendChild(document.createTextNode((record.existing.archived ? msg.msgExistsArchived : msg.msgExists) + " "));
    var link = document.createElement("a");
    link.href = record.existing.url;
    link.className = "existing-client";
    link.textContent = msg.msgOpen;
    note.appendChild(link);
    return note;
  }

  function render() {
    list.innerHTML = "";
    results.forEach(function (record, index) {
      var item = document.createElement("li");
      item.id = "company-option-" + index;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", index === active ? "true" : "false");
      var name = document.createElement("div");
      name.textContent = record.display_name || record.name || record.org_number;
      var detail = document.createElement("small");
      detail.textContent = describe(record);
      item.appendChild(name);
      item.appendChild(detail);
      if (record.warning) {
        var warning = document.createElement("small");
        warning.className = "d-block lookup-warning";
        warning.textContent = record.warning;
        item.appendChild(warning);
      }
      if (record.existing) { item.appendChild(existingNote(record, "d-block small lookup-existing")); }
      item.addEventListener("mousedown", function (event) {
        if (event.target.closest && event.target.closest("a")) { return; }  // the link opens the client
        event.preventDefault();
        choose(index);
      });
      list.appendChild(item);
    });
    list.hidden = results.length === 0;
    input.setAttribute("aria-expanded", results.length ? "true" : "false");
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", "company-option-" + active);
      document.getElementById("company-option-" + active).scrollIntoView({ block: "nearest" });
    }
  }

  function search(text) {
    var ticket = ++latest;
    setStatus(msg.msgSearching, "muted");
    fetch(msg.searchUrl + "?q=" + encodeURIComponent(text), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json().catch(function () { return { results: [], error: msg.msgUnavailable }; }); })
      .then(function (data) {
        if (ticket !== latest) { return; }
        results = data.results || [];
        active = results.length ? 0 : -1;
        render();
        if (data.error) { setStatus(data.error, data.kind === "invalid" ? "danger" : "warning"); }
        else if (!results.length) { setStatus(msg.msgNone, "muted"); }
        else { setStatus(""); }
      })
      .catch(function () {
        if (ticket !== latest) { return; }
        results = [];
        close();
        setStatus(msg.msgUnavailable, "warning");
      });
  }

  function setField(name, value) {
    var field = form.elements[name];
    if (field) { field.value = value == null ? "" : value; }
  }

  function fillAddress(prefix, address) {
    setField(prefix + "_address_lines", address ? address.lines.join("\n") : "");
    setField(prefix + "_postal_code", address ? address.postal_code : "");
    setField(prefix + "_city", address ? address.city : "");
    setField(prefix + "_country_code", address ? (address.country_code || "") : "NO");
  }

  function choose(index) {
    var record = results[index];
    if (!record) { return; }
    setField("name", record.name || record.display_name);
    setField("org_number", record.org_number);
    setField("organisation_form", record.organisation_form);
    fillAddress("business", record.business_address);
    fillAddress("postal", record.postal_address);
    input.value = record.display_name || record.name || record.org_number;
    close();
    var warning = record.warning ? " " + record.warning
      : (record.status && record.status !== "active"
        ? " " + msg.msgStatus + " " + (statusLabels[record.status] || record.status) + "." : "");
    setStatus(msg.msgChosen + warning, warning || record.existing ? "danger" : "success");
    if (record.existing) { status.appendChild(document.createTextNode(" ")); status.appendChild(existingNote(record, "")); }
    suggestContacts(record.org_number);
  }

  function suggestContacts(orgNumber) {
    roleBox.innerHTML = "";
    fetch(msg.rolesUrl + "?org=" + encodeURIComponent(orgNumber), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        // The company is filled in; only the suggestions are missing (the register is slow, down or odd).
        if (data.error) { setStatus(msg.msgChosen + " " + data.error, "warning"); }
        else if (data.message) {
          var note = document.createElement("p");
          note.className = "small text-muted mb-1 no-role-holders";
          note.textContent = data.message;
          roleBox.appendChild(note);
        }
        (data.holders || []).forEach(function (holder) {
          var button = document.createElement("button");
          button.type = "button";
          button.className = "btn btn-outline-secondary btn-sm mr-2 mb-1 role-suggestion";
          button.textContent = msg.msgUse + ": " + holder.name + " (" + (holder.role_name || holder.role) + ")";
          button.addEventListener("click", function () {
            var parts = (holder.name || "").trim().split(/\s+/);
            setField("contact_last_name", parts.length > 1 ? parts.pop() : "");
            setField("contact_first_name", parts.join(" "));
            var radio = form.querySelector('input[name="contact_role"][value="' + holder.contact_role + '"]');
            if (radio) { radio.checked = true; }
            form.elements.contact_email.focus();
          });
          roleBox.appendChild(button);
        });
      })
      .catch(function () { /* suggestions are a convenience; typing by hand always works */ });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    var text = input.value.trim();
    if (text.length < 2) { latest++; results = []; close(); setStatus(""); return; }
    timer = setTimeout(function () { search(text); }, 250);
  });

  input.addEventListener("keydown", function (event) {
    if (list.hidden) {
      if (event.key === "ArrowDown" && results.length) { active = 0; render(); event.preventDefault(); }
      if (event.key === "Enter") { event.preventDefault(); }  // Enter in the search box never submits the form
      return;
    }
    if (event.key === "ArrowDown") { active = (active + 1) % results.length; render(); event.preventDefault(); }
    else if (event.key === "ArrowUp") { active = (active - 1 + results.length) % results.length; render(); event.preventDefault(); }
    else if (event.key === "Enter") { if (active >= 0) { choose(active); } event.preventDefault(); }
    else if (event.key === "Escape") { close(); event.preventDefault(); }
  });

  input.addEventListener("blur", function () { setTimeout(close, 150); });
})();
