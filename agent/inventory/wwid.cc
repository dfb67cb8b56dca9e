#include "inventory/wwid.h"

#include <cctype>

namespace mt::inventory {

namespace {

bool IsHex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool HasPrefixNoCase(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && Lower(s.substr(0, p.size())) == p;
}

Status NotWwid(std::string_view in, std::string_view why) {
  return Status(Errc::kInvalidArgument,
                "not a WWID: '" + std::string(in) + "' (" + std::string(why) + ")");
}

Result<std::string> Naa(std::string_view in, std::string_view hex) {
  if (!IsHex(hex) || (hex.size() != 16 && hex.size() != 32))
    return NotWwid(in, "an NAA identifier is 16 or 32 hex digits");
  return "naa." + Lower(hex);
}

Result<std::string> Eui(std::string_view in, std::string_view hex) {
  if (!IsHex(hex) || (hex.size() != 16 && hex.size() != 24 && hex.size() != 32))
    return NotWwid(in, "an EUI-64 identifier is 16, 24 or 32 hex digits");
  return "eui." + Lower(hex);
}

Result<std::string> T10(std::string_view in, std::string_view text) {
  if (Trim(text).empty()) return NotWwid(in, "empty T10 vendor identifier");
  std::string_view t = text;
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return "t10." + std::string(t);
}

}  // namespace

Result<std::string> NormalizeWwid(std::string_view wwid) {
  const std::string_view in = wwid;
  std::string_view s = Trim(wwid);
  if (s.empty()) return NotWwid(in, "empty");
  if (HasPrefixNoCase(s, "wwn-")) s.remove_prefix(4);  // /dev/disk/by-id/wwn-0x...
  if (HasPrefixNoCase(s, "naa.")) return Naa(in, s.substr(4));
  if (HasPrefixNoCase(s, "eui.")) return Eui(in, s.substr(4));
  if (HasPrefixNoCase(s, "t10.")) return T10(in, s.substr(4));
  if (HasPrefixNoCase(s, "iqn.")) return Lower(s);
  if (HasPrefixNoCase(s, "0x")) return Naa(in, s.substr(2));  // udev ID_WWN
  // scsi_id / multipath: designator type digit + identifier.
  if (IsHex(s) && s.size() == 17 && s[0] == '3') return Naa(in, s.substr(1));
  if (IsHex(s) && s.size() == 33 && s[0] == '3') return Naa(in, s.substr(1));
  if (IsHex(s) && (s.size() == 17 || s.size() == 25 || s.size() == 33) && s[0] == '2')
    return Eui(in, s.substr(1));
  if (s.size() > 1 && s[0] == '1') return T10(in, s.substr(1));
  if (s.size() > 1 && s[0] == '8') return NormalizeWwid(s.substr(1));
  // Bare NAA hex: the first digit is the NAA field (2 IEEE extended,
  // 3 locally assigned, 5 IEEE registered, 6 IEEE registered extended).
  if (IsHex(s) && (s.size() == 16 || s.size() == 32) &&
      (s[0] == '2' || s[0] == '3' || s[0] == '5' || s[0] == '6'))
    return Naa(in, s);
  return NotWwid(in, "expected naa./eui./t10. forms, 0x<hex> or 3<hex>");
}

Result<std::string> NormalizeIdentity(std::string_view identity) {
  const std::string_view s = Trim(identity);
  for (std::string_view p : {"loop:", "virtio:", "nvme:", "dev:"})
    if (s.substr(0, p.size()) == p && s.size() > p.size()) return std::string(s);
  return NormalizeWwid(s);
}

}  // namespace mt::inventory
