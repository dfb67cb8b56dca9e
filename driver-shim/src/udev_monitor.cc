// Kernel uevents through a libudev monitor on the "kernel" netlink group.
#include <spdlog/spdlog.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>

#include "mt/shim/uevent.h"
#include "udev_handles.h"

namespace mt::shim {

namespace {

class KernelBlockUevents final : public UeventSource {
 public:
  KernelBlockUevents(UdevPtr udev, UdevMonitorPtr mon)
      : udev_(std::move(udev)), mon_(std::move(mon)) {}

  int fd() const override { return udev_monitor_get_fd(mon_.get()); }

  Result<std::optional<Uevent>> Next() override {
    for (;;) {
      errno = 0;
      UdevDevicePtr d(udev_monitor_receive_device(mon_.get()));
      if (!d) {
        const int err = errno;
        if (err == 0 || err == EAGAIN || err == EWOULDBLOCK) return std::optional<Uevent>();
        if (err == EINTR) continue;
        if (err == ENOBUFS) {
          spdlog::debug("uevent socket overflowed: events were lost");
          Uevent ev;
          ev.action = "overflow";
          return std::optional<Uevent>(std::move(ev));
        }
        return Status::FromErrno(err, "receive uevent");
      }
      const char* subsystem = udev_device_get_subsystem(d.get());
      if (subsystem == nullptr || std::string_view(subsystem) != "block") continue;
      Uevent ev;
      ev.subsystem = subsystem;
      const char* action = udev_device_get_action(d.get());
      ev.action = action != nullptr ? action : "";
      const char* sysname = udev_device_get_sysname(d.get());
      ev.name = sysname != nullptr ? sysname : "";
      const char* devtype = udev_device_get_devtype(d.get());
      ev.devtype = devtype != nullptr ? devtype : "";
      const dev_t dn = udev_device_get_devnum(d.get());
      ev.dev = DevNumber{major(dn), minor(dn)};
      ev.seqnum = udev_device_get_seqnum(d.get());
      return std::optional<Uevent>(std::move(ev));
    }
  }

 private:
  UdevPtr udev_;
  UdevMonitorPtr mon_;
};

}  // namespace

Result<std::unique_ptr<UeventSource>> OpenKernelBlockUevents() {
  errno = 0;
  UdevPtr udev(udev_new());
  if (!udev) return Status::FromErrno(errno ? errno : ENOMEM, "udev_new");
  errno = 0;
  UdevMonitorPtr mon(udev_monitor_new_from_netlink(udev.get(), "kernel"));
  if (!mon)
    return Status(Errc::kUnavailable,
                  std::string("cannot open the kernel uevent netlink socket: ") +
                      (errno ? std::strerror(errno) : "libudev refused"),
                  errno);
  int r = udev_monitor_filter_add_match_subsystem_devtype(mon.get(), "block", nullptr);
  if (r < 0) return Status::FromErrno(-r, "uevent filter on subsystem block");
  // Room for a burst (60 disks attached at once, each with partitions).
  r = udev_monitor_set_receive_buffer_size(mon.get(), 4 << 20);
  if (r < 0)
    spdlog::debug("uevent socket: cannot enlarge the receive buffer: {}", std::strerror(-r));
  r = udev_monitor_enable_receiving(mon.get());
  if (r < 0)
    return Status(Errc::kUnavailable,
                  std::string("cannot listen to kernel uevents: ") + std::strerror(-r), -r);
  return std::unique_ptr<UeventSource>(new KernelBlockUevents(std::move(udev), std::move(mon)));
}

}  // namespace mt::shim
