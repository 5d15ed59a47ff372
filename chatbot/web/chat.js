// Sends each question to /api/message (chat_page.py forwards it to Rasa) and shows the answers.
// Text is inserted as text, never as HTML; links in answers become anchors. An answer from the
// lake comes with its SQL (Rasa's "custom" reply after the text), shown behind a toggle.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("ask");
  const input = document.getElementById("message");
  let sender = sessionStorage.getItem("lakewatch-sender");
  if (!sender) {
    sender = "web-" + Math.random().toString(36).slice(2, 12);
    sessionStorage.setItem("lakewatch-sender", sender);
  }

  function show(text, kind) {
    const item = document.createElement("li");
    item.className = kind;
    for (const part of text.split(/(https?:\/\/[^\s)]+)/)) {
      if (/^https?:\/\//.test(part)) {
        const link = document.createElement("a");
        link.href = part;
        link.textContent = part;
        link.target = "_blank";
        link.rel = "noopener";
        item.appendChild(link);
      } else {
        item.appendChild(document.createTextNode(part));
      }
    }
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function attachSql(item, custom) {
    const details = document.createElement("details");
    details.className = "sql";
    const summary = document.createElement("summary");
    summary.textContent = "SQL (" + (custom.engine || "lake") + ")";
    const code = document.createElement("pre");
    code.textContent = custom.sql;
    details.append(summary, code);
    item.appendChild(details);
  }

  async function ask(question) {
    show(question, "user");
    const pending = show("…", "bot pending");
    try {
      const response = await fetch("/api/message", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({sender: sender, message: question}),
      });
      const body = await response.json();
      pending.remove();
      if (!response.ok) {
        show(body.error || ("error " + response.status), "error");
      } else if (body.length === 0) {
        show("(no answer)", "bot");
      } else {
        let last = null;
        for (const reply of body) {
          if (reply.custom && reply.custom.sql && last) attachSql(last, reply.custom);
          else if (reply.text) last = show(reply.text, "bot");
        }
        if (!last) show("(no answer)", "bot");
      }
    } catch (err) {
      pending.remove();
      show("The chat page cannot reach its server: " + err, "error");
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (question) { input.value = ""; ask(question); }
  });
  for (const button of document.querySelectorAll("#examples button")) {
    button.addEventListener("click", function () { ask(button.textContent); });
  }
})();
