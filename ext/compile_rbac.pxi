# Compilation of RBAC filters (envoy.filters.http.rbac and
# envoy.filters.network.rbac): the rule trees of permissions and principals
# flattened into one node array (children by index) for the core.


class _RbacNodes:
    """Python-side list of nodes: (kind, children, extra) tuples."""

    def __init__(self):
        self.nodes = []

    def add(self, kind, children=(), **extra):
        self.nodes.append((kind, list(children), extra))
        return len(self.nodes) - 1

    def set_of(self, kind, items, one):
        return self.add(kind, [one(x) for x in items])

    def permission(self, p):
        which = p.WhichOneof("rule")
        if which == "and_rules":
            return self.set_of(MC_RBAC_AND, p.and_rules.rules, self.permission)
        if which == "or_rules":
            return self.set_of(MC_RBAC_OR, p.or_rules.rules, self.permission)
        if which == "not_rule":
            return self.add(MC_RBAC_NOT, [self.permission(p.not_rule)])
        if which == "any":
            return self.add(MC_RBAC_ANY if p.any else MC_RBAC_NEVER)
        if which == "header":
            return self.add(MC_RBAC_HEADER, header=p.header)
        if which == "url_path":
            return self.add(MC_RBAC_PATH, matcher=p.url_path.path)
        if which == "destination_ip":
            return self.add(MC_RBAC_DEST_IP, cidr=p.destination_ip)
        if which == "destination_port":
            return self.add(MC_RBAC_DEST_PORT, ports=(p.destination_port, p.destination_port))
        if which == "destination_port_range":
            return self.add(MC_RBAC_DEST_PORT, ports=(p.destination_port_range.start,
                                                      p.destination_port_range.end - 1))
        if which == "requested_server_name":
            return self.add(MC_RBAC_SNI, matcher=p.requested_server_name)
        return self.add(MC_RBAC_NEVER)  # metadata (JWT claims...): nothing meshcore can see

    def principal(self, p):
        which = p.WhichOneof("identifier")
        if which == "and_ids":
            return self.set_of(MC_RBAC_AND, p.and_ids.ids, self.principal)
        if which == "or_ids":
            return self.set_of(MC_RBAC_OR, p.or_ids.ids, self.principal)
        if which == "not_id":
            return self.add(MC_RBAC_NOT, [self.principal(p.not_id)])
        if which == "any":
            return self.add(MC_RBAC_ANY if p.any else MC_RBAC_NEVER)
        if which == "authenticated":
            pn = p.authenticated.principal_name if p.authenticated.HasField("principal_name") else None
            return self.add(MC_RBAC_AUTHENTICATED, matcher=pn)
        if which in ("source_ip", "direct_remote_ip", "remote_ip"):
            return self.add(MC_RBAC_SOURCE_IP, cidr=getattr(p, which))
        if which == "header":
            return self.add(MC_RBAC_HEADER, header=p.header)
        if which == "url_path":
            return self.add(MC_RBAC_PATH, matcher=p.url_path.path)
        return self.add(MC_RBAC_NEVER)


cdef void _add_rbac(SnapshotBuilder b, int li, rules, int http) except *:
    """rules: envoy.config.rbac.v3.RBAC (the `rules` of an RBAC filter)."""
    cdef _Arena a = _Arena()
    cdef mc_sb_rbac_t r
    cdef mc_sb_rbac_node_t *nodes
    cdef mc_sb_rbac_policy_t *policies
    cdef uint32_t *kids
    memset(&r, 0, sizeof(r))
    r.action = {0: MC_RBAC_ALLOW, 1: MC_RBAC_DENY, 2: MC_RBAC_LOG}.get(rules.action, MC_RBAC_ALLOW)
    t = _RbacNodes()
    plist = []
    for name in sorted(rules.policies):  # Envoy evaluates policies in name order
        pol = rules.policies[name]
        perms = t.add(MC_RBAC_OR, [t.permission(x) for x in pol.permissions])
        princ = t.add(MC_RBAC_OR, [t.principal(x) for x in pol.principals])
        plist.append((name, perms, princ))
    nodes = <mc_sb_rbac_node_t *>a.alloc(len(t.nodes), sizeof(mc_sb_rbac_node_t))
    for i, (kind, children, extra) in enumerate(t.nodes):
        nodes[i].kind = kind
        if children:
            kids = <uint32_t *>a.alloc(len(children), sizeof(uint32_t))
            for k, c in enumerate(children):
                kids[k] = c
            nodes[i].children, nodes[i].n_children = kids, len(children)
        if "header" in extra:
            _fill_header_matcher(a, &nodes[i].match, extra["header"])
        elif "matcher" in extra:
            if extra["matcher"] is None:
                _fill_matcher(a, &nodes[i].match, "", None, True, False)
            else:
                _fill_matcher(a, &nodes[i].match, "", extra["matcher"], False, False)
        elif "cidr" in extra:
            nodes[i].ip = a.s(extra["cidr"].address_prefix)
            c = extra["cidr"]
            nodes[i].prefix_len = c.prefix_len.value if c.HasField("prefix_len") else (
                128 if ":" in c.address_prefix else 32)
        elif "ports" in extra:
            nodes[i].port_lo, nodes[i].port_hi = extra["ports"]
    policies = <mc_sb_rbac_policy_t *>a.alloc(len(plist), sizeof(mc_sb_rbac_policy_t))
    for i, (name, perms, princ) in enumerate(plist):
        policies[i].name = a.s(name)
        policies[i].permissions = perms
        policies[i].principals = princ
    r.nodes, r.n_nodes = nodes, len(t.nodes)
    r.policies, r.n_policies = policies, len(plist)
    if http:
        b._check(mc_sb_add_http_rbac(b.b, li, &r))
    else:
        b._check(mc_sb_add_network_rbac(b.b, li, &r))


def rbac_probe(rbac_rules, principal="", method="GET", path="/", authority="", headers=None,
               source_ip="127.0.0.1", destination_ip="127.0.0.1", destination_port=80, http=True):
    """Evaluates an envoy.config.rbac.v3.RBAC with the core's engine for one
    request (or connection when http is False): (allowed, policy or None).
    For tests and `meshcore check`."""
    cdef SnapshotBuilder b = SnapshotBuilder()
    cdef int li = b.add_listener("probe", "127.0.0.1", 0, None, 0)
    b.set_tcp_proxy(li, "probe", 0, 1)
    _add_rbac(b, li, rbac_rules, 0)
    return _rbac_probe_run(b, li, principal, method, path, authority, headers or {}, source_ip,
                           destination_ip, destination_port, http)


cdef tuple _rbac_probe_run(SnapshotBuilder b, int li, principal, method, path, authority, dict headers,
                           source_ip, destination_ip, uint16_t destination_port, int http):
    cdef _Arena a = _Arena()
    cdef char policy[256]
    cdef const char **names = NULL
    cdef const char **values = NULL
    items = list(headers.items())
    if items:
        names = <const char **>a.alloc(len(items), sizeof(char *))
        values = <const char **>a.alloc(len(items), sizeof(char *))
        for i, (k, v) in enumerate(items):
            names[i] = a.s(k)
            values[i] = a.s(v)
    rc = mc_rbac_probe(b.b, li, a.s(principal), a.s(method), a.s(path), a.s(authority), names, values,
                       len(items), a.s(source_ip), a.s(destination_ip), destination_port, http, policy,
                       sizeof(policy))
    if rc < 0:
        raise CoreError("rbac probe: bad input")
    name = policy.decode()
    return bool(rc), (name or None)
