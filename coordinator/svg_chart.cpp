#include "coordinator/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace ldm::coord {
namespace {

// The plot area spans x in [kLeft, kPlotRight], y in [kTop, kHeight - kBottom]; the legend sits to
// its right and the document is as wide as its longest label needs.
constexpr double kHeight = 440, kLeft = 78, kPlotRight = 570, kTop = 40, kBottom = 58;
// Tableau's ten colours: distinguishable, and what matplotlib users expect.
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

const char* colour(std::size_t i) { return kPalette[i % (sizeof kPalette / sizeof *kPalette)]; }

std::string num(double v) {  // coordinates: two decimals are plenty
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string tick_text(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3)) std::snprintf(buf, sizeof buf, "%.0e", v);
  else std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// A linear or logarithmic mapping of data values onto [a, b] pixels.
struct Scale {
  double lo, hi, a, b;
  bool log;
  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
    return a + t * (b - a);
  }
};

// The axis range and ticks for values in [lo, hi].
Scale make_scale(double lo, double hi, bool log, double a, double b, std::vector<double>& ticks) {
  if (!(hi > lo)) {  // one value (or none): a range around it
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
    if (log && lo <= 0) lo = hi / 100;
  }
  ticks = log ? log_ticks(lo, hi) : linear_ticks(lo, hi);
  return {ticks.front(), ticks.back(), a, b, log};
}

std::string document_start(const std::string& title, const std::vector<std::string>& legend_labels) {
  std::size_t longest = 0;
  for (const std::string& l : legend_labels) longest = std::max(longest, l.size());
  const double kWidth = kPlotRight + 44 + 7.2 * double(longest);  // ~7 px per character at 12 px
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         num(kWidth) + "\" height=\"" + num(kHeight) + "\" viewBox=\"0 0 " + num(kWidth) + " " + num(kHeight) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
         "<text class=\"title\" x=\"" +
         num(kLeft) + "\" y=\"24\" font-size=\"15\">" + xml_escape(title) + "</text>\n";
}

std::string axes(const Scale& x, const std::vector<double>& xt, const std::vector<std::string>& x_names, const Scale& y,
                 const std::vector<double>& yt, const std::string& x_label, const std::string& y_label) {
  const double x0 = kLeft, x1 = kPlotRight, y0 = kHeight - kBottom, y1 = kTop;
  std::string out = "<g class=\"axis x\">\n<line x1=\"" + num(x0) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(x1) +
                    "\" y2=\"" + num(y0) + "\" stroke=\"black\"/>\n";
  for (std::size_t i = 0; i < xt.size(); ++i) {
    const double px = x(xt[i]);
    out += "<line x1=\"" + num(px) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(px) + "\" y2=\"" + num(y0 + 5) +
           "\" stroke=\"black\"/><text class=\"tick\" x=\"" + num(px) + "\" y=\"" + num(y0 + 18) +
           "\" text-anchor=\"middle\">" + xml_escape(x_names.empty() ? tick_text(xt[i]) : x_names[i]) + "</text>\n";
  }
  out += "</g>\n<g class=\"axis y\">\n<line x1=\"" + num(x0) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(x0) +
         "\" y2=\"" + num(y1) + "\" stroke=\"black\"/>\n";
  for (double v : yt) {
    const double py = y(v);
    out += "<line x1=\"" + num(x0) + "\" y1=\"" + num(py) + "\" x2=\"" + num(x1) + "\" y2=\"" + num(py) +
           "\" stroke=\"#e0e0e0\"/><text class=\"tick\" x=\"" + num(x0 - 6) + "\" y=\"" + num(py + 4) +
           "\" text-anchor=\"end\">" + xml_escape(tick_text(v)) + "</text>\n";
  }
  out += "</g>\n<text class=\"x-label\" x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(kHeight - 16) +
         "\" text-anchor=\"middle\">" + xml_escape(x_label) + "</text>\n";
  out += "<text class=\"y-label\" transform=\"translate(18 " + num((y0 + y1) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + xml_escape(y_label) + "</text>\n";
  return out;
}

std::string legend(const std::vector<std::string>& labels) {
  std::string out = "<g class=\"legend\">\n";
  const double x = kPlotRight + 14;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double y = kTop + 8 + 18 * double(i);
    out += "<rect x=\"" + num(x) + "\" y=\"" + num(y - 9) + "\" width=\"14\" height=\"10\" fill=\"" + colour(i) +
           "\"/><text x=\"" + num(x + 20) + "\" y=\"" + num(y) + "\">" + xml_escape(labels[i]) + "</text>\n";
  }
  return out + "</g>\n";
}

std::string path_data(const std::vector<double>& xs, const std::vector<double>& ys, const Scale& x, const Scale& y) {
  std::string d;
  for (std::size_t i = 0; i < xs.size(); ++i) d += (d.empty() ? "M" : " L") + num(x(xs[i])) + " " + num(y(ys[i]));
  return d;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::vector<double> linear_ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(1, target - 1);
  if (!(raw > 0) || !std::isfinite(raw) || lo + raw == lo) return {lo, hi};  // no room for nice steps
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  const double first = std::floor(lo / step) * step, last = std::ceil(hi / step) * step;
  for (int i = 0; i <= 1000; ++i) {
    const double v = first + step * i;
    if (v > last + step * 1e-9) break;
    out.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  if (out.size() < 2) return {lo, hi};
  return out;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> out;
  for (int e = int(std::floor(std::log10(lo) + 1e-12)); e <= int(std::ceil(std::log10(hi) - 1e-12)); ++e)
    out.push_back(std::pow(10.0, e));
  if (out.size() == 1) out.push_back(out.front() * 10);
  return out;
}

bool wants_log_axis(const std::vector<double>& values) {
  if (values.empty()) return false;
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (double v : values) {
    if (!(v > 0) || !std::isfinite(v)) return false;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return hi / lo > 10;
}

std::vector<double> smooth(const std::vector<double>& y, double weight) {
  std::vector<double> out;
  double last = 0, debias = 0;
  for (double v : y) {
    if (!std::isfinite(v)) {  // kept as is (the line breaks there); the average goes on past it
      out.push_back(v);
      continue;
    }
    last = last * weight + (1 - weight) * v;
    debias = debias * weight + (1 - weight);
    out.push_back(last / debias);
  }
  return out;
}

std::string render_svg(const LineChart& chart) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const Series& s : chart.series)
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (chart.log_y && s.y[i] <= 0)) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]);
      yhi = std::max(yhi, s.y[i]);
    }
  if (!std::isfinite(xlo)) xlo = xhi = ylo = yhi = chart.log_y ? 1 : 0;
  std::vector<double> xt, yt;
  const Scale x = make_scale(xlo, xhi, chart.log_x, kLeft, kPlotRight, xt);
  const Scale y = make_scale(ylo, yhi, chart.log_y, kHeight - kBottom, kTop, yt);
  std::vector<std::string> labels;
  for (const Series& s : chart.series) labels.push_back(s.label);
  std::string out = document_start(chart.title, labels) + axes(x, xt, {}, y, yt, chart.x_label, chart.y_label);
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    // Non-finite values (a diverged run) and non-positive ones on a log axis are left out.
    std::vector<double> xs, ys, ss;
    for (std::size_t k = 0; k < s.x.size(); ++k)
      if (std::isfinite(s.y[k]) && (!chart.log_y || s.y[k] > 0)) {
        xs.push_back(s.x[k]);
        ys.push_back(s.y[k]);
        if (!s.smooth_y.empty()) ss.push_back(s.smooth_y[k]);
      }
    const std::string label = xml_escape(s.label);
    if (!ss.empty()) {
      out += "<path class=\"series raw\" data-label=\"" + label + "\" d=\"" + path_data(xs, ys, x, y) +
             "\" fill=\"none\" stroke=\"" + colour(i) + "\" stroke-opacity=\"0.25\" stroke-width=\"1\"/>\n";
      ys = ss;
    }
    out += "<path class=\"series\" data-label=\"" + label + "\" d=\"" + path_data(xs, ys, x, y) +
           "\" fill=\"none\" stroke=\"" + colour(i) + "\" stroke-width=\"1.8\"/>\n";
    if (xs.size() == 1)  // a single point has no line to show
      out += "<circle cx=\"" + num(x(xs[0])) + "\" cy=\"" + num(y(ys[0])) + "\" r=\"3\" fill=\"" + colour(i) + "\"/>\n";
  }
  return out + legend(labels) + "</svg>\n";
}

std::string render_svg(const BarChart& chart) {
  double lo = 0, hi = 0;
  for (std::size_t s = 0; s < chart.series.size(); ++s)
    for (std::size_t g = 0; g < chart.groups.size(); ++g)
      if (chart.present[s][g]) {
        lo = std::min(lo, chart.value[s][g] - chart.err[s][g]);
        hi = std::max(hi, chart.value[s][g] + chart.err[s][g]);
      }
  std::vector<double> yt;
  const Scale y = make_scale(lo, hi, false, kHeight - kBottom, kTop, yt);
  // Groups sit at x = 0.5, 1.5, ... on a [0, groups] axis; bars share 80% of a group's width.
  const double n = double(std::max<std::size_t>(1, chart.groups.size()));
  const Scale x{0, n, kLeft, kPlotRight, false};
  std::vector<double> xt;
  for (std::size_t g = 0; g < chart.groups.size(); ++g) xt.push_back(double(g) + 0.5);
  std::string out = document_start(chart.title, chart.series) + axes(x, xt, chart.groups, y, yt, "", chart.y_label);
  const double group_px = (kPlotRight - kLeft) / n;
  const double bar_px = group_px * 0.8 / double(std::max<std::size_t>(1, chart.series.size()));
  for (std::size_t g = 0; g < chart.groups.size(); ++g)
    for (std::size_t s = 0; s < chart.series.size(); ++s) {
      if (!chart.present[s][g]) continue;
      const double left = x(double(g)) + group_px * 0.1 + bar_px * double(s), v = chart.value[s][g];
      const double top = std::min(y(v), y(0)), height = std::fabs(y(v) - y(0));
      out += "<rect class=\"bar\" data-label=\"" + xml_escape(chart.series[s]) + "\" x=\"" + num(left) + "\" y=\"" +
             num(top) + "\" width=\"" + num(bar_px * 0.9) + "\" height=\"" + num(height) + "\" fill=\"" + colour(s) +
             "\"/>\n";
      if (chart.err[s][g] > 0) {
        const double cx = left + bar_px * 0.45, e = chart.err[s][g];
        out += "<line class=\"error\" x1=\"" + num(cx) + "\" y1=\"" + num(y(v - e)) + "\" x2=\"" + num(cx) +
               "\" y2=\"" + num(y(v + e)) + "\" stroke=\"black\"/>\n";
      }
    }
  return out + legend(chart.series) + "</svg>\n";
}

}  // namespace ldm::coord
