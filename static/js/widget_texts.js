// Flask-Admin's date-range picker and Select2 have English built in: give them the texts the server put in
// #widget-texts (admin/klient_base.html, admin_views/admin_texts.py), in the user's language.
(function () {
  "use strict";
  var holder = document.getElementById("widget-texts");
  if (!holder || !window.jQuery) {
    return;
  }
  var texts = JSON.parse(holder.getAttribute("data-texts"));
  var $ = window.jQuery;

  if ($.fn.select2 && $.fn.select2.defaults) {
    var s = texts.select2;
    $.extend($.fn.select2.defaults, {
      formatNoMatches: function () { return s.noMatches; },
      formatSearching: function () { return s.searching; },
      formatLoadMore: function () { return s.loadMore; },
      formatAjaxError: function () { return s.ajaxError; },
      formatInputTooShort: function (input, min) { return s.inputTooShort.replace("{n}", min - input.length); },
      formatSelectionTooBig: function (limit) { return s.selectionTooBig.replace("{n}", limit); }
    });
  }

  // The picker's script is loaded by each form page after this one; Flask-Admin's form.js announces itself
  // (adminFormReady) once it is there and before it builds any picker.
  function localisePicker() {
    var original = $.fn.daterangepicker;
    if (!original || original.localised) {
      return;
    }
    var locale = texts.daterangepicker;
    $.fn.daterangepicker = function (options, callback) {
      var merged = $.extend({}, options || {});
      merged.locale = $.extend({}, locale, merged.locale || {});
      return original.call(this, merged, callback);
    };
    $.fn.daterangepicker.localised = true;
  }
  localisePicker();
  $(document).on("adminFormReady", localisePicker);
})();
