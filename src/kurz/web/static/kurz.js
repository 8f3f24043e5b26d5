// kurz's own script: small enhancements; every page works without it.
"use strict";

// A button with data-copy="TEXT" (or data-copy-from="ID" of an input or element)
// copies to the clipboard and says so.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy], [data-copy-from]");
  if (!button) return;
  event.preventDefault();
  let text = button.dataset.copy;
  if (text === undefined) {
    const source = document.getElementById(button.dataset.copyFrom);
    text = source ? (source.value ?? source.textContent) : "";
  }
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text.trim());
    button.textContent = "Copied";
  } catch {
    button.textContent = "Press Ctrl+C";
    const source = document.getElementById(button.dataset.copyFrom || "");
    if (source && source.select) source.select();
  }
  const status = document.getElementById("copy-status");
  if (status) status.textContent = button.textContent;
  setTimeout(() => { button.textContent = label; }, 2000);
});

// A form with data-confirm="QUESTION" asks before it is sent (the server asks too,
// on its own page, when there is no script).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A checkbox with data-select-all="NAME" ticks every checkbox named NAME in its form.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!box.dataset || !box.dataset.selectAll) return;
  for (const other of box.form.querySelectorAll(`input[name="${box.dataset.selectAll}"]`)) {
    other.checked = box.checked;
  }
});

// /* links list */ A submit button with data-confirm="QUESTION" asks before its form is
// sent (a form with several actions, only one of which needs asking); once asked, the
// form says so (confirm=1), and the server skips its own confirmation page.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (!button || !button.dataset || !button.dataset.confirm) return;
  if (!window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  const form = event.target;
  let said = form.querySelector('input[name="confirm"]');
  if (!said) {
    said = document.createElement("input");
    said.type = "hidden";
    said.name = "confirm";
    form.appendChild(said);
  }
  said.value = "1";
});
