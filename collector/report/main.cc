// citywatch: the operator's command-line tool. `citywatch report` renders availability and
// outage figures from the collector's outage store for a calendar period, against a
// baseline period and a reduction target (docs/uptime.md). `citywatch init-store` creates an
// empty outage store (used by the history generator in tests).
#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "collector/app/collector_config.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_render.h"
#include "collector/uptime/clock.h"
#include "collector/uptime/outage_store.h"
#include "common/version.h"

namespace cw = citywatch;
namespace rep = citywatch::collector::report;
namespace up = citywatch::collector::uptime;

namespace {

bool write(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::cout << text;
    return static_cast<bool>(std::cout);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "citywatch report: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"citywatch: CityWatch operator tool"};
  app.set_version_flag("--version", std::string(cw::kVersion));
  app.require_subcommand(1);

  std::string config_file, db, period_text, baseline_text, tz_name, format = "md", output, now_text;
  double slo = -1, target = -1;
  CLI::App* report = app.add_subcommand("report", "availability and outage report for a period");
  report->add_option("-c,--config", config_file,
                     "collector configuration: outage store (state_dir), sites, maintenance "
                     "windows, default time zone and SLO");
  report->add_option("--db", db, "outage store (default: STATE_DIR/uptime.sqlite from --config)");
  std::string pg_dsn;
  report->add_option("--postgres", pg_dsn,
                     "PostgreSQL connection string of a collector pair's store (default: "
                     "store.postgres from --config)");
  report->add_option("-p,--period", period_text, "YYYY-MM, YYYY-Qn, YYYY or YYYY-MM-DD..YYYY-MM-DD")
      ->required();
  report->add_option("-b,--baseline", baseline_text, "baseline period (default: a year earlier)");
  report->add_option("--tz", tz_name, "time zone of the period (default: uptime.time_zone or UTC)");
  report->add_option("--slo", slo, "availability objective in percent (default: uptime.slo)")
      ->check(CLI::Range(0.0, 100.0));
  report
      ->add_option("--target", target,
                   "reduction target: percent fewer outage minutes than the baseline "
                   "(default: uptime.target.reduction_percent, 25)")
      ->check(CLI::Range(0.0, 100.0));
  report->add_option("-f,--format", format, "html, csv, md or all")
      ->check(CLI::IsMember({"html", "csv", "md", "all"}));
  report->add_option("-o,--output", output,
                     "output file ('-' or none: stdout); with --format all, a path prefix to "
                     "which .html, .csv and .md are appended");
  report->add_option("--now", now_text, "evaluate open outages at this time (Unix seconds)")
      ->group("");

  std::string init_db;
  CLI::App* init = app.add_subcommand("init-store", "create an empty outage store");
  auto* init_file = init->add_option("--db", init_db, "outage store file");
  std::string init_pg;
  init->add_option("--postgres", init_pg, "PostgreSQL connection string")->excludes(init_file);
  CLI11_PARSE(app, argc, argv);

  if (*init) {
    std::unique_ptr<up::OutageStore> store;
    std::unique_ptr<cw::collector::store::SqlDb> sql;
    cw::Status s = init_pg.empty() ? cw::collector::store::open_sqlite(init_db, sql)
                                   : cw::collector::store::open_postgres(init_pg, sql);
    if (init_pg.empty() && init_db.empty()) s = cw::Status::error("give --db or --postgres");
    if (s) s = up::OutageStore::open(std::move(sql), store);
    if (!s) {
      std::cerr << "citywatch init-store: " << s.message() << "\n";
      return 1;
    }
    return 0;
  }

  cw::collector::CollectorConfig cfg;
  if (!config_file.empty()) {
    if (auto s = cw::collector::load_collector_config(config_file, cfg); !s) {
      std::cerr << s.message() << "\n";
      return 2;
    }
    if (pg_dsn.empty() && db.empty()) pg_dsn = cfg.store.postgres_dsn;
    if (pg_dsn.empty() && db.empty())
      db = (std::filesystem::path(cfg.state_dir) / "uptime.sqlite").string();
  }
  if (db.empty() && pg_dsn.empty()) {
    std::cerr << "citywatch report: give --config, --db or --postgres\n";
    return 2;
  }
  rep::ReportOptions opts;
  if (!rep::parse_period(period_text, opts.period)) {
    std::cerr << "citywatch report: --period '" << period_text
              << "': expected YYYY-MM, YYYY-Qn, YYYY or YYYY-MM-DD..YYYY-MM-DD\n";
    return 2;
  }
  if (baseline_text.empty())
    opts.baseline = rep::year_before(opts.period);
  else if (!rep::parse_period(baseline_text, opts.baseline)) {
    std::cerr << "citywatch report: --baseline '" << baseline_text << "': not a period\n";
    return 2;
  }
  if (tz_name.empty()) tz_name = cfg.uptime.time_zone;
  if (auto s = up::TimeZone::load(tz_name, opts.tz); !s) {
    std::cerr << "citywatch report: --tz: " << s.message() << "\n";
    return 2;
  }
  opts.slo_percent = slo >= 0 ? slo : cfg.uptime.slo_percent;
  opts.target_reduction_percent = target >= 0 ? target : cfg.uptime.target.reduction_percent;
  opts.now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  if (!now_text.empty()) opts.now_ns = std::stoll(now_text) * up::kNsPerSecond;

  std::unique_ptr<up::OutageStore> store;
  cw::Status opened = cw::Status::ok();
  if (!pg_dsn.empty()) {
    std::unique_ptr<cw::collector::store::SqlDb> sql;
    opened = cw::collector::store::open_postgres(pg_dsn, sql);
    if (opened) opened = up::OutageStore::open(std::move(sql), store);
  } else {
    opened = up::OutageStore::open(db, store, /*create=*/false);
  }
  if (auto s = opened; !s) {
    std::cerr << "citywatch report: " << s.message() << "\n";
    return 1;
  }
  const up::MaintenanceCalendar calendar(cfg.uptime.maintenance);
  rep::Report r;
  if (auto s = rep::build_report(*store, calendar, opts, r); !s) {
    std::cerr << "citywatch report: " << s.message() << "\n";
    return 1;
  }
  bool ok = true;
  if (format == "all") {
    if (output.empty() || output == "-") {
      std::cerr << "citywatch report: --format all needs -o PREFIX\n";
      return 2;
    }
    ok = write(output + ".html", rep::render_html(r)) &&
         write(output + ".csv", rep::render_csv(r)) &&
         write(output + ".md", rep::render_markdown(r));
  } else {
    ok = write(output, format == "html"  ? rep::render_html(r)
                       : format == "csv" ? rep::render_csv(r)
                                         : rep::render_markdown(r));
  }
  return ok ? 0 : 1;
}
