#include "mt/shim/scsi_vpd.h"

#include <cstdio>

namespace mt::shim {

std::string HexLower(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

namespace {

// The kernel's "%*pE": printable ASCII as is, everything else as \ooo.
std::string EscapeNonPrintable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    }
  }
  return out;
}

// Mirrors designator_prio() of drivers/scsi/scsi_lib.c; 0 = not usable.
int DesignatorPriority(const ScsiDesignator& d) {
  if (d.association != 0 || d.identifier.empty()) return 0;
  const size_t len = d.identifier.size();
  switch (d.type) {
    case 8:  // SCSI name string
      return 9;
    case 3:  // NAA: by the NAA field (high nibble of the first byte)
      if (len != 8 && len != 16) return 0;
      switch (static_cast<unsigned char>(d.identifier[0]) >> 4) {
        case 6:
          return 8;  // IEEE registered extended
        case 5:
          return 5;  // IEEE registered
        case 4:
          return 4;  // the kernel's "NAA extended"
        case 3:
          return 1;  // locally assigned
        default:
          return 0;
      }
    case 2:  // EUI-64 based
      switch (len) {
        case 16:
          return 7;
        case 12:
          return 6;
        case 8:
          return 3;
        default:
          return 0;
      }
    case 1:  // T10 vendor id
      return 1;
    default:
      return 0;
  }
}

}  // namespace

std::string ScsiDesignator::Name() const {
  const size_t len = identifier.size();
  switch (type) {
    case 1:
      return "t10." + EscapeNonPrintable(identifier);
    case 2:
      if (len == 8 || len == 12 || len == 16) return "eui." + HexLower(identifier);
      return {};
    case 3:
      if (len == 8 || len == 16) return "naa." + HexLower(identifier);
      return {};
    case 8: {
      // NUL-terminated, padded with NULs to a multiple of four bytes.
      const size_t end = identifier.find('\0');
      return EscapeNonPrintable(std::string_view(identifier).substr(0, end));
    }
    default:
      return {};
  }
}

Result<VpdPage83> ParseVpdPage83(std::string_view page) {
  if (page.size() < 4)
    return Status(Errc::kCorruption, "VPD page 0x83: " + std::to_string(page.size()) +
                                         " bytes, shorter than its 4-byte header");
  const auto* p = reinterpret_cast<const unsigned char*>(page.data());
  if (p[1] != 0x83) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "VPD page 0x83: page code is 0x%02x", p[1]);
    return Status(Errc::kCorruption, buf);
  }
  VpdPage83 out;
  out.device_type = p[0] & 0x1f;
  size_t end = 4 + ((static_cast<size_t>(p[2]) << 8) | p[3]);
  if (end > page.size()) {
    out.truncated = true;
    end = page.size();
  }
  size_t off = 4;
  while (off < end) {
    if (end - off < 4) {
      out.truncated = true;
      break;
    }
    const size_t len = p[off + 3];
    if (end - off - 4 < len) {
      out.truncated = true;
      break;
    }
    ScsiDesignator d;
    d.protocol_id = p[off] >> 4;
    d.code_set = p[off] & 0x0f;
    d.piv = (p[off + 1] & 0x80) != 0;
    d.association = (p[off + 1] >> 4) & 0x03;
    d.type = p[off + 1] & 0x0f;
    d.identifier.assign(page.data() + off + 4, len);
    out.designators.push_back(std::move(d));
    off += 4 + len;
  }
  return out;
}

const ScsiDesignator* PreferredLunDesignator(const VpdPage83& page) {
  // As scsi_vpd_lun_id(): a later designator of equal priority replaces an
  // earlier one, except that T10 vendor ids and SCSI name strings never
  // replace a longer identifier.
  const ScsiDesignator* best = nullptr;
  int best_prio = 0;
  for (const ScsiDesignator& d : page.designators) {
    const int prio = DesignatorPriority(d);
    if (prio == 0 || best_prio > prio || d.Name().empty()) continue;
    if ((d.type == 1 || d.type == 8) && best != nullptr &&
        best->identifier.size() > d.identifier.size())
      continue;
    best = &d;
    best_prio = prio;
  }
  return best;
}

Result<std::string> ParseVpdPage80(std::string_view page) {
  if (page.size() < 4 || static_cast<unsigned char>(page[1]) != 0x80)
    return Status(Errc::kCorruption, "VPD page 0x80: bad header");
  const auto* p = reinterpret_cast<const unsigned char*>(page.data());
  size_t len = (static_cast<size_t>(p[2]) << 8) | p[3];
  if (len > page.size() - 4) len = page.size() - 4;
  std::string_view s = page.substr(4, len);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\0')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
  return EscapeNonPrintable(s);
}

const char* DesignatorTypeName(uint8_t type) {
  switch (type) {
    case 0:
      return "vendor-specific";
    case 1:
      return "t10-vendor-id";
    case 2:
      return "eui-64";
    case 3:
      return "naa";
    case 4:
      return "relative-target-port";
    case 5:
      return "target-port-group";
    case 6:
      return "logical-unit-group";
    case 7:
      return "md5-logical-unit";
    case 8:
      return "scsi-name-string";
    case 9:
      return "protocol-specific-port";
    case 10:
      return "uuid";
    default:
      return "reserved";
  }
}

const char* AssociationName(uint8_t association) {
  switch (association) {
    case 0:
      return "logical-unit";
    case 1:
      return "target-port";
    case 2:
      return "target-device";
    default:
      return "reserved";
  }
}

const char* CodeSetName(uint8_t code_set) {
  switch (code_set) {
    case 1:
      return "binary";
    case 2:
      return "ascii";
    case 3:
      return "utf-8";
    default:
      return "reserved";
  }
}

}  // namespace mt::shim
