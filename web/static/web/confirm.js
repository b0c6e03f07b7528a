// Forms with a data-confirm attribute ask before they submit (no inline handlers: the pages'
// Content-Security-Policy runs only scripts served from Packhouse's own origin).
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
