// Package e2e holds the multi-process tests of a whole fleet on loopback: the real Manager (tlsfleet
// manager), agents and a relay (ds_agent) as separate processes, driven by dsm_c and dsa_control as an
// operator would, and checked with openssl s_client.
package e2e
