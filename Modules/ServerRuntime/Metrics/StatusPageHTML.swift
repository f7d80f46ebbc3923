/// `GET /` on the metrics port: one page, no framework, no external asset (a control room's
/// screen may have no internet), that reads `/status.json` every 500 ms and redraws. The text
/// is set with `textContent` only: nothing from the JSON is ever parsed as HTML.
enum StatusPageHTML {
    static let page = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>VCOM pair status</title>
        <style>
        body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em; background: #f6f7f9; color: #1c1e21; }
        h1 { font-size: 1.1em; font-weight: 600; margin: 0 0 .8em; color: #555; }
        #banner { padding: .8em 1em; border-radius: 6px; font-size: 1.6em; font-weight: 700; background: #1f7a3a; color: white; }
        #banner.bad { background: #b3261e; } #banner.warn { background: #b26a00; }
        #reason, #since { margin: .4em 0; font-size: 1.05em; }
        table { border-collapse: collapse; margin: .8em 0 1.2em; background: white; }
        th, td { border: 1px solid #d0d4da; padding: .3em .5em; text-align: left; }
        th { background: #eceff3; font-weight: 600; }
        .active { color: #1f7a3a; font-weight: 700; } .amber { background: #ffe3a3; } .red { background: #f4b4ae; }
        #maintenance { padding: .6em 1em; background: #ffe3a3; border-radius: 6px; margin: .6em 0; }
        #updated.stale { color: #b3261e; font-weight: 700; }
        </style>
        </head>
        <body>
        <h1>VCOM pair, as <span id="server">this server</span> sees it</h1>
        <div id="banner">loading...</div>
        <div id="since"></div>
        <div id="reason"></div>
        <div id="maintenance" hidden></div>
        <div id="witness" hidden></div>
        <table id="servers"><thead><tr><th>server</th><th>role</th><th>state</th><th>epoch</th><th>peer link</th><th>clients</th><th>watching</th><th>revision</th><th>lag</th><th>licence expires</th><th>certificate expires</th><th>known from</th></tr></thead><tbody></tbody></table>
        <h1>Last incidents</h1>
        <table id="incidents"><thead><tr><th>incident</th><th>decided</th><th>cause</th><th>clients</th><th>switch back acknowledged</th></tr></thead><tbody></tbody></table>
        <div id="updated"></div>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        const time = (iso) => iso ? new Date(iso).toLocaleString() : "";
        function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text === undefined || text === null ? "" : String(text); if (cls) td.className = cls; return td; }
        function expiry(iso, days) {
          if (!iso) return ["", ""];
          return [new Date(iso).toLocaleDateString() + " (" + days + " d)", days < 0 ? "red" : days < 30 ? "amber" : ""];
        }
        function render(s) {
          $("server").textContent = s.server;
          const banner = $("banner");
          if (s.serving.length === 1) { banner.textContent = s.serving[0] + " serves"; banner.className = ""; }
          else if (s.serving.length === 0) { banner.textContent = "NOBODY SERVES (as " + s.server + " sees it)"; banner.className = "bad"; }
          else { banner.textContent = "BOTH SERVE (a split): " + s.serving.join(", "); banner.className = "bad"; }
          if (s.maintenance && s.serving.length === 1) banner.className = "warn";
          $("since").textContent = s.since ? "since " + time(s.since) + " (" + Math.round((Date.now() - new Date(s.since)) / 1000) + " s)" : "";
          const i = s.incident;
          $("reason").textContent = i ? "why: incident " + i.id + ": " + i.cause + ", decided " + time(i.decided_at)
              + (i.link_lost_ms_before !== null ? "; peer link lost " + i.link_lost_ms_before + " ms before" : "")
              + (i.client_loss_ms_before !== null ? "; clients lost " + i.client_loss_ms_before + " ms before" : "")
              + (i.acknowledged_at ? "; acknowledged " + time(i.acknowledged_at) : "")
            : (s.serving.length === 1 ? "why: normal operation (no failover)" : "");
          const m = s.maintenance;
          $("maintenance").hidden = !m;
          $("maintenance").textContent = m ? "MAINTENANCE MODE since " + time(m.since) + " by " + m.by + ": " + m.reason
              + (m.until ? " (ends " + time(m.until) + ")" : " (until turned off)") + ". No automatic failover." : "";
          $("witness").hidden = !s.witness;
          $("witness").textContent = s.witness ? "witness (etcd): " + s.witness : "";
          const body = $("servers").tBodies[0];
          body.replaceChildren();
          for (const srv of s.servers) {
            const row = body.insertRow();
            row.dataset.server = srv.id;
            cell(row, srv.id); cell(row, srv.role); cell(row, srv.state, srv.state === "active" ? "active" : "");
            cell(row, srv.epoch); cell(row, srv.link_up ? "up" : "DOWN", srv.link_up ? "" : "red");
            cell(row, srv.clients_logged_in); cell(row, srv.clients_watching); cell(row, srv.config_revision);
            cell(row, srv.replication_lag);
            const [licence, lc] = expiry(srv.licence_expires, srv.licence_days_left); cell(row, licence, lc);
            const [cert, cc] = expiry(srv.certificate_expires, srv.certificate_days_left); cell(row, cert, cc);
            cell(row, srv.source);
          }
          const incidents = $("incidents").tBodies[0];
          incidents.replaceChildren();
          for (const inc of s.incidents) {
            const row = incidents.insertRow();
            cell(row, inc.id); cell(row, time(inc.decided_at)); cell(row, inc.cause); cell(row, inc.clients_logged_in);
            cell(row, inc.acknowledged_at ? time(inc.acknowledged_at) : "not yet");
          }
          $("updated").textContent = "updated " + new Date().toLocaleTimeString();
          $("updated").className = "";
        }
        async function poll() {
          try {
            const response = await fetch("/status.json" + location.search, { cache: "no-store" });
            if (!response.ok) throw new Error("HTTP " + response.status);
            render(await response.json());
          } catch (error) {
            $("updated").textContent = "this server does not answer (" + error.message + "); last update above";
            $("updated").className = "stale";
          }
          setTimeout(poll, 500);
        }
        poll();
        </script>
        </body>
        </html>

        """#
}
