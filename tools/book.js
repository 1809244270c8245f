// The HTML book's behaviour (tools/htmlbook.py): contents menu on small screens, a copy
// button on code, and search. Everything is local: the search index is a script,
// search-index.js, loaded on first use, so search works from file:// as well.
(function () {
  "use strict";

  // -- contents menu (small screens)
  const menu = document.getElementById("menu");
  const sidebar = document.getElementById("sidebar");
  if (menu && sidebar) {
    menu.addEventListener("click", function () {
      const open = sidebar.classList.toggle("open");
      menu.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // -- copy buttons on code cells
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand("copy");
    } finally {
      area.remove();
    }
    return Promise.resolve();
  }
  document.querySelectorAll("div.sourceCode").forEach(function (block) {
    const pre = block.querySelector("pre");
    if (!pre) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy the code");
    button.addEventListener("click", function () {
      copyText(pre.innerText).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Select and copy"; }
      );
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
    block.appendChild(button);
  });

  // -- search
  const input = document.getElementById("search");
  const list = document.getElementById("search-results");
  if (!input || !list) return;
  let loading = null;

  function loadIndex() {
    if (window.LLMBOOK_SEARCH) return Promise.resolve(window.LLMBOOK_SEARCH);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = "search-index.js";
        script.onload = function () { resolve(window.LLMBOOK_SEARCH || []); };
        script.onerror = function () { reject(new Error("search-index.js missing")); };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function snippet(text, word) {
    const at = text.toLowerCase().indexOf(word);
    const start = Math.max(0, at - 60);
    return (start > 0 ? "…" : "") + text.slice(start, start + 160) + "…";
  }

  // Sections holding every word of the query, best first (words in the title count most).
  function search(index, query) {
    const words = query.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 1; });
    if (!words.length) return [];
    const hits = [];
    index.forEach(function (entry) {
      const title = entry.title.toLowerCase();
      const text = entry.text.toLowerCase();
      let score = 0;
      for (const w of words) {
        const inTitle = title.includes(w);
        const inText = text.includes(w);
        if (!inTitle && !inText) return;
        score += (inTitle ? 10 : 0) + (inText ? 1 : 0);
      }
      hits.push({ entry: entry, score: score });
    });
    hits.sort(function (a, b) { return b.score - a.score; });
    return hits.map(function (h) {
      return { entry: h.entry, snippet: snippet(h.entry.text, words[0]) };
    });
  }
  window.llmbookSearch = function (query) {
    return loadIndex().then(function (index) { return search(index, query); });
  };

  function show(results, query) {
    list.replaceChildren();
    if (!query.trim()) {
      list.hidden = true;
      return;
    }
    if (!results.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = "Nothing found for “" + query + "”";
      list.appendChild(li);
    }
    results.slice(0, 30).forEach(function (r) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = r.entry.url;
      const head = document.createElement("strong");
      head.textContent = r.entry.title;
      const where = document.createElement("small");
      where.textContent = r.entry.page;
      const text = document.createElement("span");
      text.textContent = r.snippet;
      a.append(head, where, text);
      li.appendChild(a);
      list.appendChild(li);
    });
    list.hidden = false;
  }

  let timer = null;
  input.addEventListener("focus", function () { loadIndex().catch(function () {}); });
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      const query = input.value;
      window.llmbookSearch(query).then(function (r) { show(r, query); });
    }, 120);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      input.value = "";
      show([], "");
    }
  });
})();
