// Buttons with a data-copy attribute copy the text of the element whose id it names (the
// install snippets). Served from Packhouse's origin: the pages' Content-Security-Policy runs no
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
  var done = function () {
    button.textContent = "Copied";
    button.setAttribute("aria-live", "polite");
    window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
  };
  var text = source.textContent;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
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
  }
});
