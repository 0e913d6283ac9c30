// Renders a Report as self-contained HTML (inline CSS and SVG charts, no script, no external
// resource), CSV (one table; the `section` column says what a row is) or Markdown. All three
// print the same figures with the same rounding (report_builder.h's formatters), so a
// figure pasted from one matches the others.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "collector/report/report_builder.h"

namespace citywatch::collector::report {

std::string render_html(const Report& r);
std::string render_csv(const Report& r);
std::string render_markdown(const Report& r);

}  // namespace citywatch::collector::report
