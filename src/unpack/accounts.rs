//! The user a container's process runs as, resolved as runc and the engines resolve an image's `User` (image-spec
//! conversion.md): `NAME` or `UID`, optionally `:GROUP` or `:GID`, names looked up in the unpacked rootfs's own
//! `/etc/passwd` and `/etc/group` (read through [`Root`], bounded), never the host's.

use super::root::Root;
use crate::error::{Error, Result};
use crate::oci::runtime::User as ProcessUser;

/// The most of `/etc/passwd` or `/etc/group` read: far above any real one.
pub const MAX_ACCOUNTS_FILE: u64 = 4 << 20;

/// One line of `/etc/passwd` or `/etc/group`: its name, its id, and the fourth field (passwd: the primary gid;
/// group: the members).
struct Account<'a> {
    name: &'a str,
    id: u32,
    fourth: &'a str,
}

/// The well-formed lines of an account file; others are skipped, as glibc and runc skip them.
fn accounts(text: &str) -> impl Iterator<Item = Account<'_>> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next().filter(|n| !n.is_empty())?;
        let _password = fields.next()?;
        let id = fields.next()?.parse().ok()?;
        Some(Account { name, id, fourth: fields.next().unwrap_or("") })
    })
}

/// Resolves `user` (the image config's `User`; none or empty is root) in the rootfs at `root`; `image` names the
/// image in errors.
pub fn resolve(user: Option<&str>, root: &Root, image: &str) -> Result<ProcessUser> {
    let user = user.unwrap_or("").trim();
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let read = |path: &str| -> Result<String> {
        let bytes = root
            .read_file(path.as_bytes(), MAX_ACCOUNTS_FILE)
            .map_err(|b| Error::bad_image(image, format!("cannot read /{path} of the unpacked rootfs: {b}")))?;
        Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
    };
    let passwd = read("etc/passwd")?;
    let found = match user_part {
        "" => accounts(&passwd).find(|a| a.id == 0),
        name => match name.parse::<u32>() {
            Ok(uid) => accounts(&passwd).find(|a| a.id == uid),
            Err(_) => Some(accounts(&passwd).find(|a| a.name == name).ok_or_else(|| {
                Error::bad_image(image, format!("the user `{}` is not in the rootfs's /etc/passwd", shown(name)))
            })?),
        },
    };
    let uid = match (user_part.parse::<u32>(), &found) {
        (Ok(uid), _) => uid,
        (Err(_), Some(account)) => account.id,
        (Err(_), None) => 0,
    };
    let primary = found.as_ref().and_then(|a| a.fourth.parse::<u32>().ok()).unwrap_or(0);
    let group = read("etc/group")?;
    let gid = match group_part {
        None | Some("") => primary,
        Some(name) => match name.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => accounts(&group).find(|a| a.name == name).map(|a| a.id).ok_or_else(|| {
                Error::bad_image(image, format!("the group `{}` is not in the rootfs's /etc/group", shown(name)))
            })?,
        },
    };
    let mut additional_gids: Vec<u32> = match &found {
        Some(account) => accounts(&group)
            .filter(|g| g.fourth.split(',').any(|member| member.trim() == account.name))
            .map(|g| g.id)
            .filter(|&id| id != gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ProcessUser { uid, gid, additional_gids })
}

fn shown(text: &str) -> String {
    crate::error::display_text(text, 255)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs(passwd: &str, group: &str) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn names_and_numbers_resolve_through_the_rootfs_files() {
        let (_dir, root) = rootfs(
            "root:x:0:0::/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1001::/home/app:/bin/sh\n",
            "root:x:0:\napp:x:1001:\nvideo:x:44:app,other\naudio:x:29:other\n",
        );
        let user = |spec: &str| resolve(Some(spec), &root, "img").map_err(|e| e.to_string());
        assert_eq!(user("").unwrap(), ProcessUser { uid: 0, gid: 0, additional_gids: vec![] });
        assert_eq!(user("app").unwrap(), ProcessUser { uid: 1000, gid: 1001, additional_gids: vec![44] });
        assert_eq!(user("1000:audio").unwrap(), ProcessUser { uid: 1000, gid: 29, additional_gids: vec![44] });
        assert_eq!(user("4242:7").unwrap(), ProcessUser { uid: 4242, gid: 7, additional_gids: vec![] });
        assert!(user("nobody").unwrap_err().contains("the user `nobody` is not in the rootfs's /etc/passwd"));
        assert!(user("app:wheel").unwrap_err().contains("the group `wheel` is not in the rootfs's /etc/group"));
    }

    #[test]
    fn an_account_file_that_is_a_link_out_of_the_root_is_read_inside_it() {
        let (dir, root) = rootfs("", "");
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        // Absolute, as a rootfs's links are: inside the root it names the rootfs's own file, not the host's.
        std::os::unix::fs::symlink("/etc/real-passwd", dir.path().join("etc/passwd")).unwrap();
        std::fs::write(dir.path().join("etc/real-passwd"), "svc:x:77:78::/:/bin/sh\n").unwrap();
        let user = resolve(Some("svc"), &root, "img").unwrap();
        assert_eq!((user.uid, user.gid), (77, 78));
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/shadow-of-the-host", dir.path().join("etc/passwd")).unwrap();
        assert!(resolve(Some("root"), &root, "img").unwrap_err().to_string().contains("not in the rootfs"));
    }
}
