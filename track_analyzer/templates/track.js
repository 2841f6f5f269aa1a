// The track page's script: a playhead that follows playback, click-to-seek and keyboard control
// of the timeline, and a readout of the moment under the playhead. The page is whole without it:
// the verdict, the timeline and its tables are in the HTML.
(function () {
  "use strict";

  // Written by report.py: w (the plot's width in SVG units), axis (the seconds it spans), sd (the
  // slice duration), labels (the model's), shown (the labels drawn), starts (each slice's start),
  // scores (a row per shown label, a value per slice), top and topScore (each slice's best label
  // and its score).
  var data = JSON.parse(document.getElementById("timeline-data").textContent);
  var box = document.getElementById("timeline");
  var head = document.getElementById("playhead");
  var readout = document.getElementById("readout");
  var audio = document.getElementById("audio");  // null when the page has no audio
  var W = data.w;
  var axis = data.axis;
  var n = data.starts.length;
  var t = 0;  // the playhead's moment, in seconds
  var pending = null;  // a seek asked for before the audio's metadata arrived
  var raf = 0;  // the animation frame of the playback loop, 0 when none is asked for
  var centres = data.starts.map(function (s) {
    return s + data.sd / 2;
  });

  // Seconds as m:ss, or h:mm:ss from an hour (as report.py writes them).
  function clock(s) {
    s = Math.max(0, Math.round(s));
    var m = Math.floor(s / 60);
    var r = s % 60;
    if (m >= 60) {
      return Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") + ":" + String(r).padStart(2, "0");
    }
    return m + ":" + String(r).padStart(2, "0");
  }

  function pct(v) {
    return (100 * v).toFixed(0) + " %";
  }

  // The slice whose centre is nearest to x seconds (the earlier one on a tie), -1 when there is none.
  function sliceAt(x) {
    var lo = 0;
    var hi = n - 1;
    if (n === 0) {
      return -1;
    }
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (centres[mid] < x) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo > 0 && Math.abs(centres[lo - 1] - x) <= Math.abs(centres[lo] - x)) {
      lo--;
    }
    return lo;
  }

  // The moment x in words: its time, its slice, the slice's top label and the shown labels' scores.
  function describe(x) {
    var i = sliceAt(x);
    if (i < 0) {
      return clock(x);
    }
    var parts = data.shown.map(function (name, k) {
      return name + " " + pct(data.scores[k][i]);
    });
    return clock(x) + " \u2014 slice " + clock(data.starts[i]) + "\u2013" + clock(data.starts[i] + data.sd) +
      ": top " + data.labels[data.top[i]] + " " + pct(data.topScore[i]) + " (" + parts.join(", ") + ")";
  }

  function usable() {
    return audio && !audio.error;
  }

  // The end of what can be sought: the audio's duration once known, else the timeline's.
  function limit() {
    return usable() && isFinite(audio.duration) && audio.duration > 0 ? audio.duration : axis;
  }

  // Put the playhead at x seconds and say where it is (to the readout and to screen readers).
  function draw(x) {
    t = Math.max(0, Math.min(x, axis));
    var px = (t / axis) * W;
    head.setAttribute("x1", px);
    head.setAttribute("x2", px);
    head.style.display = "";
    box.setAttribute("aria-valuenow", t.toFixed(1));
    var text = describe(t);
    box.setAttribute("aria-valuetext", text);
    readout.textContent = text;
  }

  // Jump to x seconds: the audio too where it can play (once its metadata is there).
  function seek(x) {
    x = Math.max(0, Math.min(x, limit()));
    if (usable()) {
      if (audio.readyState >= 1) {
        audio.currentTime = x;
      } else {
        pending = x;
      }
    }
    draw(x);
  }

  // While the audio plays, the playhead follows it at every frame (timeupdate alone is a few times a second).
  function loop() {
    if (!audio || audio.paused || audio.ended) {
      raf = 0;
      return;
    }
    draw(audio.currentTime);
    raf = requestAnimationFrame(loop);
  }

  function missing() {
    document.getElementById("audio-missing").hidden = false;
    audio.hidden = true;
  }

  // The timeline as a slider for the keyboard and screen readers.
  box.setAttribute("tabindex", "0");
  box.setAttribute("role", "slider");
  box.setAttribute("aria-valuemin", "0");
  box.setAttribute("aria-valuemax", axis.toFixed(1));
  box.addEventListener("click", function (ev) {
    var r = box.getBoundingClientRect();
    if (r.width > 0) {
      seek((ev.clientX - r.left) / r.width * axis);
    }
    box.focus();
  });
  box.addEventListener("keydown", function (ev) {
    var x = null;
    switch (ev.key) {
      case "ArrowLeft":
      case "ArrowDown":
        x = t - 5;
        break;
      case "ArrowRight":
      case "ArrowUp":
        x = t + 5;
        break;
      case "PageDown":
        x = t - 30;
        break;
      case "PageUp":
        x = t + 30;
        break;
      case "Home":
        x = 0;
        break;
      case "End":
        x = limit();
        break;
      case " ":
      case "k":
        if (usable()) {
          if (audio.paused) {
            audio.play();
          } else {
            audio.pause();
          }
          ev.preventDefault();
        }
        return;
      default:
        return;
    }
    ev.preventDefault();
    seek(x);
  });

  if (audio) {
    if (audio.error) {
      missing();
    }
    audio.addEventListener("error", missing);
    audio.addEventListener("loadedmetadata", function () {
      if (pending !== null) {
        audio.currentTime = pending;
        pending = null;
      }
    });
    audio.addEventListener("timeupdate", function () {
      if (!raf) {
        draw(audio.currentTime);
      }
    });
    audio.addEventListener("seeked", function () {
      draw(audio.currentTime);
    });
    audio.addEventListener("play", function () {
      if (!raf) {
        raf = requestAnimationFrame(loop);
      }
    });
  }

  document.getElementById("timeline-help").hidden = false;
  draw(0);
  // For tools/report_screenshots.py and the curious: seek from the console.
  window.trackPage = {
    seek: seek,
    time: function () {
      return t;
    },
  };
})();
