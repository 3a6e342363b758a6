# -*- coding: utf-8 -*-
"""Ansible connection plugin `xenchan.xen.xenchan`: runs tasks in a Xen guest without SSH or guest
networking, through xenchand's Call on the guest's QEMU guest agent channel. The work is done by
plugin_utils/guest_agent.py; this file maps Ansible's connection interface and options onto it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: xenchan
short_description: Run tasks in Xen guests through xenchand and the QEMU guest agent
description:
  - Runs commands and copies files in a Xen guest through xenchand (the xenchan gRPC control
    plane in dom0), which relays QEMU guest agent commands over the guest's PV channel
    C(org.qemu.guest_agent.0). No SSH, no guest networking; every command is a xenchand Call,
    authorised by its policy (verb C(call)) and written to its audit log.
  - Commands run with C(guest-exec) (polled with C(guest-exec-status)); files move with
    C(guest-file-open), C(guest-file-write)/C(guest-file-read) and C(guest-file-close), in chunks
    within xenchand's Call limits (64 KiB requests, 1 MiB replies).
  - The guest needs qemu-ga with those commands allowed, and a channel for it
    (C(xenchanctl create DOMAIN org.qemu.guest_agent.0 --framing qga --durable)).
  - Commands run as the user qemu-ga runs as (root in a stock guest). C(become) without a
    password works (the become command is part of the command line); C(become) that would answer
    a password prompt is not supported, as with the libvirt_qemu plugin.
author: xenchan
version_added: "0.1.0"
requirements:
  - the xenchan Python SDK (python3-xenchan, or pip install ./clients/python)
options:
  remote_addr:
    description: The Xen domain, by name or UUID.
    default: inventory_hostname
    type: string
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_xenchan_domain
  xenchan_target:
    description: >-
      xenchand's gRPC target: C(unix:///run/xenchan/xenchand.sock) (the default; callers known by
      uid) or C(host:port) with mutual TLS.
    default: unix:///run/xenchan/xenchand.sock
    type: string
    vars:
      - name: ansible_xenchan_target
    env:
      - name: XENCHAN_TARGET
  xenchan_tls_ca:
    description: PEM file of the CA that signed xenchand's certificate; setting it turns on TLS.
    type: path
    vars:
      - name: ansible_xenchan_tls_ca
  xenchan_tls_cert:
    description: PEM file of this client's certificate (its identity for xenchand's policy).
    type: path
    vars:
      - name: ansible_xenchan_tls_cert
  xenchan_tls_key:
    description: PEM file of this client's private key.
    type: path
    vars:
      - name: ansible_xenchan_tls_key
  xenchan_tls_server_name:
    description: The name to check in xenchand's certificate instead of the target's host.
    type: string
    vars:
      - name: ansible_xenchan_tls_server_name
  xenchan_channel:
    description: The channel id of the guest agent.
    default: org.qemu.guest_agent.0
    type: string
    vars:
      - name: ansible_xenchan_channel
  xenchan_agent:
    description: >-
      The agent on the channel. Only C(qemu-ga) runs commands and moves files: xenchan-agent has
      no exec or file operations (see the collection's README).
    default: qemu-ga
    choices: [qemu-ga]
    type: string
    vars:
      - name: ansible_xenchan_agent
  xenchan_connect_timeout:
    description: Seconds to wait for the agent's first answer (it may be starting).
    default: 30
    type: float
    vars:
      - name: ansible_xenchan_connect_timeout
  xenchan_call_timeout:
    description: Seconds each guest agent command (one Call) may take.
    default: 30
    type: float
    vars:
      - name: ansible_xenchan_call_timeout
  xenchan_command_timeout:
    description: >-
      Seconds a command may run before it is killed (SIGKILL by pid) and the task fails; 0 means
      no limit. The task keyword C(timeout) also kills the command it interrupts.
    default: 0
    type: float
    vars:
      - name: ansible_xenchan_command_timeout
  executable:
    description: The shell that interprets each command line in the guest.
    default: /bin/sh
    type: string
    vars:
      - name: ansible_xenchan_shell
"""

EXAMPLES = r"""
# inventory.yml
all:
  hosts:
    web1: {}                        # the domain's name (or its UUID)
  vars:
    ansible_connection: xenchan.xen.xenchan
    ansible_xenchan_target: dom0.example.org:7443
    ansible_xenchan_tls_ca: /etc/xenchan/ca.pem
    ansible_xenchan_tls_cert: ~/.xenchan/me.pem
    ansible_xenchan_tls_key: ~/.xenchan/me.key
"""

import os

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

try:
    import xenchan
    from ansible_collections.xenchan.xen.plugins.plugin_utils.guest_agent import (
        GuestAgent, TransportError)
    _IMPORT_ERROR = None
except ImportError as e:  # reported when the plugin is used, not when Ansible lists plugins
    _IMPORT_ERROR = e

display = Display()


def _raise(e, what):
    """TransportError -> AnsibleConnectionFailure (host unreachable) or AnsibleError (task failed)."""
    message = "xenchan: %s: %s" % (what, e)
    if e.unreachable:
        raise AnsibleConnectionFailure(message)
    raise AnsibleError(message)


class Connection(ConnectionBase):
    """One guest, through xenchand. Owns its xenchan.Client (closed by close())."""

    transport = "xenchan.xen.xenchan"
    has_pipelining = False
    has_tty = False

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._client = None
        self._agent = None

    def _connect(self):
        if self._connected:
            return self
        if _IMPORT_ERROR is not None:
            raise AnsibleError("xenchan: the xenchan Python SDK is needed (apt install "
                               "python3-xenchan, or pip install ./clients/python): %s"
                               % _IMPORT_ERROR)
        domain = self.get_option("remote_addr")
        target = self.get_option("xenchan_target")
        tls = None
        if self.get_option("xenchan_tls_ca"):
            tls = xenchan.TlsFiles(ca=self.get_option("xenchan_tls_ca"),
                                   cert=self.get_option("xenchan_tls_cert"),
                                   key=self.get_option("xenchan_tls_key"),
                                   server_name=self.get_option("xenchan_tls_server_name"))
        display.vvv(u"XENCHAN CONNECT %s via %s" % (domain, target), host=domain)
        try:
            self._client = xenchan.connect(target, tls=tls,
                                           timeout=self.get_option("xenchan_call_timeout"))
        except (OSError, ValueError) as e:
            raise AnsibleConnectionFailure("xenchan: cannot use the TLS files for %s: %s"
                                           % (target, e))
        self._agent = GuestAgent(self._client, domain, self.get_option("xenchan_channel"),
                                 call_timeout=self.get_option("xenchan_call_timeout"),
                                 log=lambda line: display.vvvv(line, host=domain))
        try:
            self._agent.wait_ready(self.get_option("xenchan_connect_timeout"))
        except TransportError as e:
            self.close()
            _raise(e, "connecting to %s via %s" % (domain, target))
        self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        if sudoable and self.become and self.become.expect_prompt():
            raise AnsibleError("xenchan: become with a password prompt is not supported (qemu-ga "
                               "runs commands as its own user, root in a stock guest; use become "
                               "without a password, or none)")
        shell = self.get_option("executable")
        display.vvv(u"XENCHAN EXEC %s -c %s" % (shell, cmd), host=self._play_context.remote_addr)
        try:
            result = self._agent.run([shell, "-c", cmd], stdin=to_bytes(in_data or b""),
                                     timeout=self.get_option("xenchan_command_timeout"))
        except TransportError as e:
            _raise(e, "running %r" % (cmd,))
        return result.rc, result.stdout, result.stderr

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        display.vvv(u"XENCHAN PUT %s TO %s" % (in_path, out_path),
                    host=self._play_context.remote_addr)
        if not os.path.isfile(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("xenchan: file to copy does not exist: %s" % in_path)
        try:
            self._agent.put(in_path, out_path)
        except TransportError as e:
            _raise(e, "copying %s to %s" % (in_path, out_path))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv(u"XENCHAN FETCH %s TO %s" % (in_path, out_path),
                    host=self._play_context.remote_addr)
        try:
            self._agent.fetch(in_path, out_path)
        except TransportError as e:
            _raise(e, "fetching %s to %s" % (in_path, out_path))

    def reset(self):
        self.close()

    def close(self):
        if self._client is not None:
            self._client.close()
        self._client = None
        self._agent = None
        self._connected = False
