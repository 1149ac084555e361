document.addEventListener("DOMContentLoaded", () => {
  document.documentElement.dataset.assets = "loaded";
});
