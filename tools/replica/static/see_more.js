/* The replica's "50 more" button, like IMDb's: fetch the next results from the GraphQL endpoint
   (AdvancedTitleSearch with the cursor of the last result shown), append them to the list with the markup the
   server renders (the templates come from the page's replica-search-state script), and remove the button when
   there is no next page. A failed request is marked on the button (data-error) and can be retried by clicking. */
(function () {
  "use strict";
  var stateElement = document.getElementById("replica-search-state");
  var list = document.querySelector("ul.ipc-metadata-list");
  var button = document.querySelector("button.ipc-see-more__button");
  if (!stateElement || !list || !button) {
    return;
  }
  var state = JSON.parse(stateElement.textContent);
  var busy = false;

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#x27;");
  }

  function fill(name, values) {
    return state.templates[name].replace(/\{(\w+)\}/g, function (_, key) {
      return values[key];
    });
  }

  function abbreviate(votes) {
    if (votes < 1000) {
      return String(votes);
    }
    var scale = votes >= 999500 ? 1000000 : 1000;
    var suffix = scale === 1000000 ? "M" : "K";
    var tenths = Math.floor((votes * 10 + scale / 2) / scale);
    if (tenths < 100) {
      var whole = Math.floor(tenths / 10);
      var decimal = tenths % 10;
      return (decimal ? whole + "." + decimal : String(whole)) + suffix;
    }
    return String(Math.floor((votes + scale / 2) / scale)) + suffix;
  }

  function runtimeText(seconds) {
    var minutes = Math.round(seconds / 60);
    var hours = Math.floor(minutes / 60);
    var rest = minutes % 60;
    if (!hours) {
      return rest + "m";
    }
    return rest ? hours + "h " + rest + "m" : hours + "h";
  }

  function metadata(title) {
    var spans = [];
    if (title.releaseYear && title.releaseYear.year) {
      spans.push(String(title.releaseYear.year));
    }
    if (title.runtime && title.runtime.seconds) {
      spans.push(runtimeText(title.runtime.seconds));
    }
    if (title.certificate && title.certificate.rating) {
      spans.push(title.certificate.rating);
    }
    return spans
      .map(function (text) {
        return fill("metadata", { text: escapeHtml(text) });
      })
      .join("");
  }

  function rating(title) {
    var summary = title.ratingsSummary || {};
    if (summary.aggregateRating === null || summary.aggregateRating === undefined) {
      return "";
    }
    return fill("rating", {
      rating: summary.aggregateRating.toFixed(1),
      votes: abbreviate(summary.voteCount || 0),
    });
  }

  function poster(title) {
    var image = title.primaryImage;
    if (!image || !image.url) {
      return state.templates.poster_none;
    }
    var sized = state.posterSizes.map(function (size) {
      return image.url.replace("._V1_.jpg", size.suffix);
    });
    return fill("poster_image", {
      alt: escapeHtml(image.caption ? image.caption.plainText : ""),
      src: escapeHtml(sized[0]),
      srcset: escapeHtml(
        sized
          .map(function (url, index) {
            return url + " " + state.posterSizes[index].width + "w";
          })
          .join(", ")
      ),
    });
  }

  function renderItem(title, position) {
    return fill("item", {
      id: escapeHtml(title.id),
      n: String(position),
      title: escapeHtml(title.titleText.text),
      metadata: metadata(title),
      rating: rating(title),
      poster: poster(title),
      plot: escapeHtml(title.plot && title.plot.plotText ? title.plot.plotText.plainText : ""),
    });
  }

  async function loadMore() {
    if (busy) {
      return;
    }
    busy = true;
    button.setAttribute("aria-disabled", "true");
    button.removeAttribute("data-error");
    try {
      var variables = Object.assign({}, state.variables, { after: state.after, first: state.pageSize });
      var url =
        "/graphql?operationName=AdvancedTitleSearch&variables=" + encodeURIComponent(JSON.stringify(variables));
      var response = await fetch(url, { headers: { accept: "application/graphql+json, application/json" } });
      if (response.status !== 200) {
        var waf = response.headers.get("x-amzn-waf-action");
        throw new Error("HTTP " + response.status + (waf ? " (x-amzn-waf-action: " + waf + ")" : ""));
      }
      var search = (await response.json()).data.advancedTitleSearch;
      var html = search.edges
        .map(function (edge, index) {
          return renderItem(edge.node.title, state.rendered + index + 1);
        })
        .join("");
      list.insertAdjacentHTML("beforeend", html);
      state.rendered += search.edges.length;
      state.after = search.pageInfo.endCursor;
      if (!search.pageInfo.hasNextPage) {
        button.closest(".ipc-see-more").remove();
      }
    } catch (error) {
      button.setAttribute("data-error", String((error && error.message) || error));
    } finally {
      busy = false;
      button.setAttribute("aria-disabled", "false");
    }
  }

  button.addEventListener("click", loadMore);
})();
