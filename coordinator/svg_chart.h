// Line and bar charts as standalone SVG documents (`ldm-coord plot`, `compare --plot`). Our own
// small writer: Debian has no small, well-kept C++ plotting library, and the charts need only
// axes, ticks, paths, rectangles and text. Every element a reader (or a test) looks for carries a
// class: "series" / "series raw" paths (with data-label), "bar" rects, "error" lines, "tick"
// labels of the "axis x" / "axis y" groups, "x-label" / "y-label" / "title" texts, "legend".
#pragma once

#include <string>
#include <vector>

namespace ldm::coord {

struct Series {
  std::string label;
  std::vector<double> x, y;  // raw points, x ascending
  // Drawn solid over a faint raw line when set (same length as y); else the raw line is solid.
  std::vector<double> smooth_y;
};

struct LineChart {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<Series> series;
};

struct BarChart {
  std::string title, y_label;
  std::vector<std::string> groups;  // one group of bars per column (a stage, a key value)
  std::vector<std::string> series;  // one bar per row in each group (colour and legend)
  // value[s][g], err[s][g] (one standard deviation; 0 = none); present[s][g] false = no bar.
  std::vector<std::vector<double>> value, err;
  std::vector<std::vector<bool>> present;
};

std::string render_svg(const LineChart& chart);
std::string render_svg(const BarChart& chart);

// "Nice" tick values (1, 2 or 5 times a power of ten) from below lo to above hi, about `target` of them.
std::vector<double> linear_ticks(double lo, double hi, int target = 6);
// Powers of ten spanning [lo, hi] (lo > 0): from the one at or below lo to the one at or above hi.
std::vector<double> log_ticks(double lo, double hi);
// A log axis helps when every value is positive and they span more than a decade.
bool wants_log_axis(const std::vector<double>& values);
// TensorBoard's smoothing: an exponential moving average with weight w in [0, 1), debiased so the
// first points are not pulled toward 0.
std::vector<double> smooth(const std::vector<double>& y, double weight);
// Text with &, <, >, " escaped for SVG.
std::string xml_escape(const std::string& text);

}  // namespace ldm::coord
