// The /assistant page. The question being asked shows at once with a placeholder for its answer; while
// the server works, the tool progress and the answer's chunks arrive over the page's WebSocket into that
// placeholder (fragments wrapped in <template data-ws-for="pending-ID">, applied by nexus.js), and the
// POST's response then replaces it with the finished turn. Without a socket only the last step happens.
(function () {
  var MAX_CHARS = 2000;
  var submitted = null;  // the question in flight, as sent
  var carried = null;    // what was typed meanwhile, kept across the form's replacement

  function askForm() { return document.getElementById("ask-form"); }

  function field(form, name) { return form.querySelector("[name=" + name + "]"); }

  // The server names the turn's elements after the ask id in its plain hex form (no dashes).
  function askIdOf(form) {
    var input = field(form, "ask_id");
    return input ? input.value.replace(/-/g, "").toLowerCase() : "";
  }

  function insertPlaceholder(form) {
    var askId = askIdOf(form);
    var question = (field(form, "question").value || "").trim();
    // Nothing to show for what the server will refuse: it answers with the field's error instead.
    if (!askId || !question || question.length > MAX_CHARS) return;
    var existing = document.getElementById("turn-" + askId);
    if (existing && !existing.classList.contains("failed")) return;  // a double submit: one placeholder
    if (existing) existing.remove();
    var template = document.getElementById("pending-turn");
    var turn = template.content.firstElementChild.cloneNode(true);
    turn.id = "turn-" + askId;
    turn.querySelector("[data-question]").textContent = question;
    var answer = turn.querySelector("[data-pending]");
    answer.id = "pending-" + askId;
    answer.querySelector("[data-tools]").id = "pending-" + askId + "-tools";
    answer.querySelector("[data-text]").id = "pending-" + askId + "-text";
    var turns = document.getElementById("turns");
    var empty = turns.querySelector(".turns-empty");
    if (empty) empty.remove();
    turns.appendChild(turn);
    turn.scrollIntoView({ block: "nearest" });
  }

  function markFailed(askId) {
    var turn = document.getElementById("turn-" + askId);
    if (!turn || !turn.classList.contains("pending")) return;
    turn.classList.add("failed");
    var answer = turn.querySelector("[data-pending]");
    answer.removeAttribute("aria-busy");
    answer.removeAttribute("id");  // late fragments for it are dropped
    var note = document.createElement("p");
    note.className = "field-error";
    note.setAttribute("role", "alert");
    note.textContent = "No answer came back (the connection or the server failed). Ask again.";
    answer.appendChild(note);
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "ask-form") return;
    submitted = field(form, "question").value;
    carried = null;
    insertPlaceholder(form);
  });

  // The next question typed while this one was answered survives the fresh form the answer brings.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "ask-form") return;
    var now = field(form, "question").value;
    carried = now.trim() && now !== submitted ? now : null;
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "ask-form" || event.detail.successful) return;
    var askId = askIdOf(form);
    if (askId) markFailed(askId);
  });

  // The form came back with a field error: the question was not asked, so its placeholder goes.
  document.addEventListener("htmx:load", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "ask-form") return;
    if (carried !== null && !form.dataset.failedAsk) {
      field(form, "question").value = carried;
      carried = null;
    }
    if (!form.dataset.failedAsk) return;
    var turn = document.getElementById("turn-" + form.dataset.failedAsk);
    if (turn && turn.classList.contains("pending")) turn.remove();
    var input = field(form, "question");
    if (input) input.focus();
  });

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id && target.id.indexOf("turn-") === 0) target.scrollIntoView({ block: "nearest" });
  });

  // Suggested questions ask themselves.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-suggest]");
    var form = askForm();
    if (!button || !form) return;
    field(form, "question").value = button.dataset.suggest;
    form.requestSubmit();
  });

  // Enter sends, Shift+Enter starts a new line.
  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || !input.closest) return;
    var form = input.closest("#ask-form");
    if (!form || input.name !== "question") return;
    event.preventDefault();
    form.requestSubmit();
  });
})();
