//! The `kind.x-k8s.io/v1alpha4` `Cluster` config as Rust types.
//!
//! Field names, casing and order follow kind's `pkg/apis/config/v1alpha4/types.go`.
//! Everything a user may leave out is an `Option` or an empty collection, so a
//! config read and written again keeps what its author wrote and gains no
//! defaults: kind applies its defaults itself. Unknown fields are errors.
//!
//! Enumerations (`role`, `ipFamily`, `kubeProxyMode`, `propagation`,
//! `protocol`) are Rust enums read as kind reads them (`protocol` in any
//! letter case, an empty string as unset), so a misspelt value is rejected
//! when the file is read, with its path and the allowed values; kind rejects
//! the same values, `protocol` and `propagation` when it reads the file, the
//! others when it validates.
//!
//! One deliberate difference from kind's Go types: a JSON 6902 patch must name
//! its `kind` and carry a `patch` (without them kind never applies it).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A kind cluster config (`kind: Cluster`, `apiVersion: kind.x-k8s.io/v1alpha4`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// Always `Cluster`.
    pub kind: Kind,
    /// Always `kind.x-k8s.io/v1alpha4`.
    pub api_version: ApiVersion,
    /// The cluster name; `kind create cluster --name` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// No nodes means kind's default: one control-plane node.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub nodes: Vec<Node>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<Networking>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub feature_gates: BTreeMap<String, bool>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub runtime_config: BTreeMap<String, String>,
    /// RFC 7386 merge patches for the kubeadm config of every node, each a YAML
    /// text; applied before the node's own.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub kubeadm_config_patches: Vec<String>,
    #[serde(
        rename = "kubeadmConfigPatchesJSON6902",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub kubeadm_config_patches_json6902: Vec<PatchJson6902>,
    /// TOML merge patches for containerd's config (unused by CRI-O, kept as written).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub containerd_config_patches: Vec<String>,
    #[serde(
        rename = "containerdConfigPatchesJSON6902",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub containerd_config_patches_json6902: Vec<String>,
}

/// One node container of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Node {
    /// kind's default is `control-plane`; see [`Node::effective_role`].
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_unset"
    )]
    pub role: Option<Role>,
    /// The node image; `kind create cluster --image` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub extra_mounts: Vec<Mount>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub extra_port_mappings: Vec<PortMapping>,
    /// Merge patches for this node only, applied after the cluster's.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub kubeadm_config_patches: Vec<String>,
    #[serde(
        rename = "kubeadmConfigPatchesJSON6902",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub kubeadm_config_patches_json6902: Vec<PatchJson6902>,
}

impl Node {
    /// A node of `role` with nothing else set.
    pub fn new(role: Role) -> Node {
        Node {
            role: Some(role),
            ..Node::default()
        }
    }

    /// The role kind gives this node: an unset role is `control-plane`.
    pub fn effective_role(&self) -> Role {
        self.role.unwrap_or(Role::ControlPlane)
    }
}

/// Cluster-wide network settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Networking {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_unset"
    )]
    pub ip_family: Option<IpFamily>,
    /// Host port of the API server; unset or 0 lets kind pick, -1 the container engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_address: Option<String>,
    /// A CIDR, or two comma-separated CIDRs (one per family) for `ipFamily: dual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<String>,
    /// Same form as `pod_subnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_subnet: Option<String>,
    #[serde(
        rename = "disableDefaultCNI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_default_cni: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_unset"
    )]
    pub kube_proxy_mode: Option<KubeProxyMode>,
    /// Unset inherits the host's search domains; an empty list means none.
    #[serde(rename = "dnsSearch", default, skip_serializing_if = "Option::is_none")]
    pub dns_search: Option<Vec<String>>,
}

/// A host path mounted into the node container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(
        rename = "selinuxRelabel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub selinux_relabel: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_unset"
    )]
    pub propagation: Option<MountPropagation>,
}

/// A host port forwarded to a port of the node container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    /// Unset or 0 lets kind pick a free port, -1 the container engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    /// An IP address; unset means all addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_unset"
    )]
    pub protocol: Option<Protocol>,
}

/// An RFC 6902 JSON patch for the kubeadm config objects of one `kind`
/// (and, when `group`/`version` are set, only of that API version).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchJson6902 {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub kind: String,
    /// The list of operations, as YAML or JSON text.
    pub patch: String,
}

impl PatchJson6902 {
    /// The `apiVersion` this patch is limited to, as kind computes it
    /// (`group/version`, or `version` alone); `None` matches every version.
    pub fn api_version(&self) -> Option<String> {
        match (self.group.is_empty(), self.version.is_empty()) {
            (true, true) => None,
            (true, false) => Some(self.version.clone()),
            (false, _) => Some(format!("{}/{}", self.group, self.version)),
        }
    }
}

/// An enumeration read from its spelling in a config.
trait Spelled: Sized + Copy + 'static {
    /// The type's name, for the reader.
    const NAME: &'static str;
    /// Every spelling, in kind's order.
    const NAMES: &'static [&'static str];
    /// The value kind reads `text` as, if any.
    fn read(text: &str) -> Option<Self>;
}

/// For an enumeration field: kind reads an empty string as unset, as if the
/// field were not there, and then applies its default.
fn empty_as_unset<'de, D: Deserializer<'de>, T: Spelled>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    struct Field<T>(Option<T>);
    impl<'de, T: Spelled> Deserialize<'de> for Field<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            read_spelled(deserializer, true).map(Field)
        }
    }
    Ok(Option::<Field<T>>::deserialize(deserializer)?.and_then(|field| field.0))
}

/// Reads a [`Spelled`] value; `None` for an empty string if `empty_is_unset`.
/// It goes through the reader's enumeration path (unit variants only), so
/// that a bad value is reported where it stands.
fn read_spelled<'de, D: Deserializer<'de>, T: Spelled>(
    deserializer: D,
    empty_is_unset: bool,
) -> Result<Option<T>, D::Error> {
    use serde::de::{DeserializeSeed, EnumAccess, Error, VariantAccess, Visitor};
    use std::marker::PhantomData;

    #[derive(Clone, Copy)]
    struct Read<T> {
        empty_is_unset: bool,
        value: PhantomData<T>,
    }

    impl<'de, T: Spelled> DeserializeSeed<'de> for Read<T> {
        type Value = Option<T>;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
            deserializer.deserialize_identifier(self)
        }
    }

    impl<'de, T: Spelled> Visitor<'de> for Read<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "one of {}", T::NAMES.join(", "))
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Option<T>, E> {
            if text.is_empty() && self.empty_is_unset {
                return Ok(None);
            }
            T::read(text)
                .map(Some)
                .ok_or_else(|| E::unknown_variant(text, T::NAMES))
        }

        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Option<T>, A::Error> {
            let (value, variant) = data.variant_seed(self)?;
            variant.unit_variant()?;
            Ok(value)
        }
    }

    let read = Read {
        empty_is_unset,
        value: PhantomData,
    };
    deserializer.deserialize_enum(T::NAME, T::NAMES, read)
}

/// An enumeration as kind spells it. With `read as f`, kind passes the text
/// through `f` before comparing it with the spellings.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident $(read as $read:path)? { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in kind's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used in the config file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl Spelled for $name {
            const NAME: &'static str = stringify!($name);
            const NAMES: &'static [&'static str] = &[$($text),+];

            fn read(text: &str) -> Option<$name> {
                let text: std::borrow::Cow<'_, str> = text.into();
                $(let text: std::borrow::Cow<'_, str> = $read(&text).into();)?
                $name::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = read_spelled(deserializer, false)?;
                value.ok_or_else(|| serde::de::Error::unknown_variant("", $name::NAMES))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            /// Parses the config-file spelling; the error lists the valid ones.
            fn from_str(s: &str) -> Result<Self, String> {
                $name::read(s)
                    .ok_or_else(|| format!("{s:?} is not one of {}", $name::NAMES.join(", ")))
            }
        }
    };
}

string_enum! {
    /// What a node runs.
    Role {
        ControlPlane = "control-plane",
        Worker = "worker",
    }
}

string_enum! {
    /// The cluster's IP family.
    IpFamily {
        Ipv4 = "ipv4",
        Ipv6 = "ipv6",
        Dual = "dual",
    }
}

string_enum! {
    /// kube-proxy's mode; `none` does not deploy kube-proxy.
    KubeProxyMode {
        Iptables = "iptables",
        Ipvs = "ipvs",
        Nftables = "nftables",
        None = "none",
    }
}

string_enum! {
    /// Mount propagation between host and node container.
    MountPropagation {
        None = "None",
        HostToContainer = "HostToContainer",
        Bidirectional = "Bidirectional",
    }
}

string_enum! {
    /// Transport protocol of a port mapping, in any letter case: kind's
    /// `PortMapping.UnmarshalYAML` upper-cases it before comparing.
    Protocol read as go_to_upper {
        Tcp = "TCP",
        Udp = "UDP",
        Sctp = "SCTP",
    }
}

/// `text` in upper case as Go's `strings.ToUpper` makes it: letter by letter,
/// so a letter whose upper case is several letters (`ß`) stays as it is, and
/// the long s (`ſ`) becomes `S`.
fn go_to_upper(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(one), None) => one,
                _ => c,
            }
        })
        .collect()
}

/// The config's `kind`, which can only be `Cluster`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Kind;

impl Kind {
    pub const VALUE: &'static str = "Cluster";
}

/// The config's `apiVersion`, which can only be `kind.x-k8s.io/v1alpha4`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ApiVersion;

impl ApiVersion {
    pub const VALUE: &'static str = "kind.x-k8s.io/v1alpha4";
}

macro_rules! fixed_string {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($name::VALUE)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let found = String::deserialize(deserializer)?;
                if found == $name::VALUE {
                    Ok($name)
                } else {
                    Err(serde::de::Error::invalid_value(
                        serde::de::Unexpected::Str(&found),
                        &$name::VALUE,
                    ))
                }
            }
        }
    };
}

fixed_string!(Kind);
fixed_string!(ApiVersion);

/// kind (Go's YAML decoder) reads `nodes:` with no value as an empty list; so do we.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_case_as_go_makes_it() {
        assert_eq!(go_to_upper("tcp"), "TCP");
        assert_eq!(go_to_upper("sCtP"), "SCTP");
        // The long s has a one-letter upper case; the sharp s has none in Go.
        assert_eq!(go_to_upper("ſctp"), "SCTP");
        assert_eq!(go_to_upper("ßtcp"), "ßTCP");
    }

    #[test]
    fn protocols_read_in_any_case_and_nothing_else() {
        for (text, protocol) in [
            ("TCP", Protocol::Tcp),
            ("udp", Protocol::Udp),
            ("Sctp", Protocol::Sctp),
        ] {
            assert_eq!(text.parse::<Protocol>(), Ok(protocol), "{text}");
        }
        for text in ["", " tcp", "tcp ", "http", "TCP6"] {
            assert!(text.parse::<Protocol>().is_err(), "{text:?}");
        }
        // Other enumerations are read as spelt.
        assert!("Worker".parse::<Role>().is_err());
        assert!("IPv4".parse::<IpFamily>().is_err());
    }
}
