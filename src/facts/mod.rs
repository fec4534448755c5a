//! What the host already is: distribution, init system, firewall, SELinux, tools.

pub mod os_release;
