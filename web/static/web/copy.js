// Buttons with a data-copy attribute copy the text of the element whose id it names (the
// install snippets) and say so in the element "<id>-status" (a live region). Served from Packhouse's origin: the pages' Content-Security-Policy runs no
// inline script.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) {
    return;
  }
  var status = document.getElementById(button.getAttribute("data-copy") + "-status");
  var done = function () {
    if (status) {
      status.textContent = "Copied";
      window.setTimeout(function () { status.textContent = ""; }, 3000);
    }
  };
  var text = source.textContent;
  var fallback = function () {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    document.body.removeChild(area);
    done();
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});
