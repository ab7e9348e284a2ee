// Mailroom console: confirmations for destructive buttons, nothing else. Every page works
// without this file; htmx adds partial updates where a page asks for them.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
