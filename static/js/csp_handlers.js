// Click behaviour that used to be inline onclick="..." attributes, which the Content-Security-Policy forbids.
//   data-confirm="question"      ask before the button submits its form (or the link is followed)
//   data-model-action="name"     run Flask-Admin's bulk action on the checked rows (admin/actions.html)
//   data-prevent-default         a link that only triggers script (Flask-Admin's filter menu); so is href="#"
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var target = event.target.closest('[data-confirm], [data-model-action], [data-prevent-default], a[href="#"]');
    if (!target) {
      return;
    }
    if (target.hasAttribute("data-model-action")) {
      event.preventDefault();
      if (window.modelActions) {
        window.modelActions.execute(target.getAttribute("data-model-action"));
      }
      return;
    }
    if (!target.hasAttribute("data-confirm")) {
      event.preventDefault();
      return;
    }
    if (!window.confirm(target.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  });
})();
