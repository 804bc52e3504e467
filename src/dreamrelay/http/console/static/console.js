/* DreamRelay console: a little script on server-rendered pages. Every page works without it, except the
   live playground. Nothing is kept in localStorage; the session is an HttpOnly cookie, and POSTs carry the
   page's CSRF token in a header. */
"use strict";
(function () {
  var T = JSON.parse((document.getElementById("i18n") || {}).textContent || "{}");
  function t(key, values) {
    var text = T[key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
    return text;
  }
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }
  function csrf() { var input = $("input[name=csrf]"); return input ? input.value : ""; }

  /* times: the server writes UTC, the reader sees their own clock */
  function localTimes(root) {
    $$("time[datetime]", root).forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      if (!isNaN(when)) { node.title = node.textContent; node.textContent = when.toLocaleString(document.documentElement.lang); }
    });
  }

  /* copy buttons */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    var label = button.textContent;
    function done(ok) {
      button.textContent = ok ? t("js.copied") : t("js.copy_failed");
      if (!ok) { var range = document.createRange(); range.selectNodeContents(source); getSelection().removeAllRanges(); getSelection().addRange(range); }
      setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(function () { done(true); }, function () { done(false); });
    } else { done(false); }
  });

  /* confirmations: on a form, or on the button that submits it */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !confirm(question)) event.preventDefault();
  });

  /* the video grid: thumbnails (lazy images) until a tile is hovered, clicked or keyed; then its video is
     made and played, one at a time. Nothing but the visible thumbnails loads with the page. */
  var playing = null;
  function clipOf(frame) {
    var video = $("video", frame);
    if (!video) {
      video = el("video", { muted: "", loop: "", playsinline: "", preload: "auto" });
      video.muted = true;
      video.src = frame.getAttribute("data-video");
      var thumbnail = $("img", frame);
      frame.insertBefore(video, thumbnail ? thumbnail.nextSibling : frame.firstChild);
    }
    return video;
  }
  function play(frame) {
    if (playing && playing !== frame) stop(playing);
    playing = frame;
    frame.classList.add("playing");
    var started = clipOf(frame).play();
    if (started && started.catch) started.catch(function () {});
  }
  function stop(frame) {
    var video = $("video", frame);
    if (video) video.pause();
    frame.classList.remove("playing");
    if (playing === frame) playing = null;
  }
  $$(".frame.clip[data-video]").forEach(function (frame) {
    frame.addEventListener("mouseenter", function () { play(frame); });
    frame.addEventListener("mouseleave", function () { stop(frame); });
    frame.addEventListener("click", function () { if (playing === frame) stop(frame); else play(frame); });
    frame.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); frame.click(); }
    });
  });

  /* polling a task through the console's own JSON route (cookie + same origin) */
  function poll(url, onChange, onDone) {
    var last = null;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (task) {
          if (task.state !== last) { last = task.state; onChange(task); }
          if (task.state === "completed" || task.state === "failed") onDone(task);
          else setTimeout(tick, 1000);
        })
        .catch(function () { onChange(null); setTimeout(tick, 3000); });
    }
    tick();
  }

  /* a task page that is still running reloads itself when the task finishes */
  var taskState = $("#task-state[data-poll]");
  if (taskState && taskState.getAttribute("data-poll")) {
    poll(taskState.getAttribute("data-poll"), function (task) {
      if (task) taskState.innerHTML = "";
      var shown = task && (task.state === "queued" ? "pending" : task.state);  // Agents API: queued
      if (task) taskState.appendChild(el("span", { class: "state s-" + shown }, t("state." + shown)));
    }, function () { location.reload(); });
  }

  /* the playground */
  var form = $("#play");
  if (form) {
    var endpoint = form.getAttribute("data-endpoint");
    var steps = $("#steps");
    var status = $("#run-state");
    function show(state, message) {
      if (state === "queued") state = "pending";  // a Uni-1 image is an Agents API generation
      var order = ["pending", "processing", "completed"];
      var reached = order.indexOf(state === "failed" ? "processing" : state);
      $$("li", steps).forEach(function (li, i) {
        li.className = i < reached || (i === reached && state === "completed") ? "done" : i === reached ? (state === "failed" ? "fail" : "now") : "";
      });
      var seen = steps.getAttribute("data-seen");
      if (state && seen.split(" ").indexOf(state) < 0) steps.setAttribute("data-seen", (seen + " " + state).trim());
      status.textContent = message;
    }
    function refreshBalance() {
      var shown = $("#balance");
      if (!shown) return;
      fetch("/console/me/api/balance", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) shown.textContent = data.balance.toLocaleString("en-US"); })
        .catch(function () {});
    }
    function readImage(input) {
      return new Promise(function (resolve, reject) {
        var file = input.files && input.files[0];
        if (!file) return resolve(null);
        if (["image/png", "image/jpeg"].indexOf(file.type) < 0) return reject(new Error(t("js.image_type")));
        if (file.size > 10 * 1024 * 1024) return reject(new Error(t("js.image_too_big")));
        var reader = new FileReader();
        reader.onload = function () { resolve(reader.result); };
        reader.onerror = function () { reject(reader.error); };
        reader.readAsDataURL(file);
      });
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = $("#submit");
      var data = new FormData(form);
      var body = { user_prompt: data.get("user_prompt"), loop: $("#loop").checked };
      ["aspect_ratio", "model_name", "resolution", "duration"].forEach(function (name) {
        if (data.get(name)) body[name] = data.get(name);
      });
      var images = $$("input[type=file][data-field]", form);
      button.disabled = true;
      $("#run").hidden = false;
      $("#run-media").innerHTML = "";
      $("#run-link").hidden = true;
      steps.setAttribute("data-seen", "");
      show(null, t("js.submitting"));
      Promise.all(images.map(readImage))
        .then(function (uris) {
          images.forEach(function (input, i) { if (uris[i]) body[input.getAttribute("data-field")] = uris[i]; });
          return fetch(endpoint, {
            method: "POST", credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
            body: JSON.stringify(body)
          });
        })
        .then(function (r) {
          return r.json().then(function (json) {
            if (!r.ok) throw new Error((json.error && json.error.message) || r.status);
            return json;
          });
        })
        .then(function (task) {
          var started = Date.now();
          form.setAttribute("data-task", task.id);
          var link = $("#run-link a");
          link.href = "/console/me/tasks/" + task.id;
          $("#run-link").hidden = false;
          show(task.state, t("js.submitted", { id: task.id }));
          poll(endpoint + "/" + task.id, function (current) {
            if (!current) { status.textContent = t("js.network"); return; }
            show(current.state, current.state === "completed" ? t("js.completed", { s: ((Date.now() - started) / 1000).toFixed(1) })
              : current.state === "failed" ? t("js.failed", { reason: current.failure_reason || "" }) : t("js.waiting"));
          }, function (done) {
            button.disabled = false;
            refreshBalance();
            var picture = (done.output || []).filter(function (o) { return o.type === "image"; })[0];
            if (done.state === "completed" && picture) {  // a Uni-1 image (Agents API generation)
              $("#run-media").appendChild(el("img", { class: "player", src: picture.url, alt: "", id: "result-image" }));
              return;
            }
            if (done.state !== "completed" || !done.video) return;
            var video = el("video", { class: "player", controls: "", playsinline: "", autoplay: "", muted: "", loop: "", id: "result-video" });
            video.muted = true;
            if (done.thumbnail) video.poster = done.thumbnail.url;
            video.src = done.video.url;
            $("#run-media").appendChild(video);
          });
        })
        .catch(function (error) {
          button.disabled = false;
          show("failed", t("js.failed", { reason: error.message }));
        });
    });
  }

  localTimes(document);
})();
