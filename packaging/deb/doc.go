// Package deb holds the Debian package of op25b: build.sh (run by
// `make deb`) assembles op25b_VERSION_ARCH.deb with dpkg-deb from this
// directory's unit, default file and maintainer scripts, and the man pages
// and bash completion the binaries generate from their own flags. The
// package has no Go code; its test builds the package, installs it on the
// machine, runs the installed op25bd the way op25bd.service does and
// removes it again (README.md).
package deb
