(function () {
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"]};
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.id.replace(/-plot$/, "-data")).textContent);
    Plotly.newPlot(el, spec.data, spec.layout, config);
  });
})();
