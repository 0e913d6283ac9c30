// The CityWatch version, reported by --version, HELLO and citywatch_build_info.
#pragma once

#include <string_view>

namespace citywatch {
inline constexpr std::string_view kVersion = "0.1.0";
}
