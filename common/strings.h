// Small string utilities.
#ifndef SBX_COMMON_STRINGS_H_
#define SBX_COMMON_STRINGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace sbx {

std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view Trim(std::string_view s);
std::string ToLower(std::string_view s);
// Percent-decoding for URL paths and query values ('+' is a space in queries).
std::string UrlDecode(std::string_view s, bool plus_is_space);
std::string UrlEncode(std::string_view s);

}  // namespace sbx

#endif  // SBX_COMMON_STRINGS_H_
