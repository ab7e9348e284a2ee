// Mailroom console: confirmations for destructive buttons and the current tab kept in view,
// nothing else. Every page works without this file; htmx adds partial updates where a page
// asks for them.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// On a phone the tabs scroll sideways in one row: show the current one.
document.addEventListener("DOMContentLoaded", function () {
  var current = document.querySelector(".tabs [aria-current]");
  if (current) {
    current.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
});
