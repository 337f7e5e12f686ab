# cpack.cmake - the Debian packages, one per install component:
#   libmq2     (lib)    the shared library libmq.so.2
#   libmq-dev  (dev)    header, libmq.so, libmq.a, libmq.pc, CMake files, libmq(3), examples
#   mqbroker   (broker) mqbroker, mqctl, the dashboard, the systemd unit, man pages
#   mqbridge   (bridge) mqbridge, its systemd unit and defaults file, mqbridge(8);
#                       only when mqbridge is built (pkg-config found libnats)
# Build them with `cpack -G DEB` in any build directory, or with
# packaging/build-debs.sh (the same, with Debian's hardening flags). Whatever
# the configured CMAKE_INSTALL_PREFIX, the packages install under
# MQ_PACKAGING_PREFIX (/usr, set in the top-level CMakeLists.txt), and /etc and
# /lib/systemd: CPack stages them with CMAKE_INSTALL_PREFIX set to it, so the
# files that name a path (the unit, /etc/default/mqbroker, libmq.pc; the CMake
# package is relocatable) name the packaged ones (packaging/CMakeLists.txt).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mqbroker)
set(CPACK_PACKAGE_VENDOR "mqbroker developers")
set(CPACK_PACKAGE_CONTACT "mqbroker developers <dev@mqbroker.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Stage with DESTDIR and CMAKE_INSTALL_PREFIX=/usr (not a staging path), so
# that the install rules see the real prefix: those that place files outside
# /usr, and those that write it into a file. With CPACK_SET_DESTDIR, CPack
# stages under CPACK_INSTALL_PREFIX, which defaults to CMAKE_INSTALL_PREFIX
# (/usr/local in a default build directory): hence both are set.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX ${MQ_PACKAGING_PREFIX})
set(CPACK_PACKAGING_INSTALL_PREFIX ${MQ_PACKAGING_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/debs)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev broker)
if(TARGET mqbridge)
  list(APPEND CPACK_COMPONENTS_ALL bridge)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SOURCE mqbroker)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(mq_deb_version "${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libmq2)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
# shlibs file (programs built against libmq2 depend on libmq2 >= this version)
# and the ldconfig trigger, as dh_makeshlibs makes them.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA "${CMAKE_CURRENT_LIST_DIR}/deb/libmq2/triggers")
# ... and not CPack's ldconfig postinst/postrm, which this takes out again:
set(CPACK_POST_BUILD_SCRIPTS "${CMAKE_CURRENT_LIST_DIR}/deb/drop-ldconfig-scripts.cmake")
set(CPACK_COMPONENT_LIB_DESCRIPTION
"message queue in POSIX shared memory - shared library
libmq is the client library of mqbroker: applications call mq_send() and
mq_recv() on a bounded circular queue in a POSIX shared-memory object, with
no system call unless a side has to wait. Any process may be killed at any
instruction: the others never wedge, and no message is torn or duplicated.
.
This package contains the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libmq-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libmq2 (= ${mq_deb_version})")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "mqbroker")
set(CPACK_COMPONENT_DEV_DESCRIPTION
"message queue in POSIX shared memory - development files
libmq is the client library of mqbroker: applications call mq_send() and
mq_recv() on a bounded circular queue in a POSIX shared-memory object, with
no system call unless a side has to wait.
.
This package contains the header libmq.h, the static library, the
pkg-config file (libmq), the CMake package (find_package(libmq) with the
targets libmq::libmq and libmq::static), the libmq(3) manual page and two
examples.")

set(CPACK_DEBIAN_BROKER_PACKAGE_NAME mqbroker)
set(CPACK_DEBIAN_BROKER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_BROKER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_BROKER_PACKAGE_SUGGESTS "libmq-dev, curl")
set(CPACK_DEBIAN_BROKER_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_LIST_DIR}/deb/conffiles;${CMAKE_CURRENT_LIST_DIR}/deb/postinst;${CMAKE_CURRENT_LIST_DIR}/deb/prerm;${CMAKE_CURRENT_LIST_DIR}/deb/postrm")
set(CPACK_COMPONENT_BROKER_DESCRIPTION
"message queue in POSIX shared memory - broker daemon and tools
mqbroker creates (or adopts) a libmq message queue in /dev/shm, watches the
processes attached to it and repairs after dead ones, and serves the queue's
statistics over HTTP as JSON (/status), Prometheus metrics (/metrics) and a
live dashboard. Clients keep working while the broker restarts.
.
This package contains the daemon with its systemd service (user mqbroker,
group mq: members of mq may use the queue), the dashboard, and mqctl, a
command-line tool to send, receive and inspect messages.")

# Depends: what dpkg-shlibdeps finds in the binary (libnats, and whatever
# else it links: never listed here), and adduser for the postinst.
set(CPACK_DEBIAN_BRIDGE_PACKAGE_NAME mqbridge)
set(CPACK_DEBIAN_BRIDGE_PACKAGE_SECTION net)
set(CPACK_DEBIAN_BRIDGE_PACKAGE_DEPENDS "adduser")
# mqbroker creates the queues (group mq) and gives back the leases of a bridge
# that was killed; the NATS server is usually elsewhere, and Debian's one
# needs JetStream switched on (-js) first.
set(CPACK_DEBIAN_BRIDGE_PACKAGE_RECOMMENDS "mqbroker")
set(CPACK_DEBIAN_BRIDGE_PACKAGE_SUGGESTS "nats-server, curl")
set(mq_bridge_deb "${CMAKE_CURRENT_LIST_DIR}/deb/mqbridge")
set(CPACK_DEBIAN_BRIDGE_PACKAGE_CONTROL_EXTRA
    "${mq_bridge_deb}/conffiles;${mq_bridge_deb}/postinst;${mq_bridge_deb}/prerm;${mq_bridge_deb}/postrm")
set(CPACK_COMPONENT_BRIDGE_DESCRIPTION
"message queue in POSIX shared memory - bridge to NATS JetStream
mqbridge carries messages between local libmq queues and NATS JetStream, so
that programs on several hosts can exchange messages while each keeps calling
mq_send() and mq_recv() on its local queue. An export route takes each
message of a local queue and publishes it to a JetStream subject, removing it
from the queue only once JetStream has stored it: the stream holds every
message exactly once however often the bridge is killed. An import route
reads a subject through a durable JetStream consumer into a local queue,
acknowledging only what the queue holds: at least once, nothing lost.
.
This package contains the daemon with its systemd service (user mqbridge,
group mq; not started until /etc/default/mqbridge names a NATS server and
the routes) and the manual page mqbridge(8).")

include(CPack)
