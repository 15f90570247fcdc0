// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title Registry: the members of a cobuild builder network.
/// @notice Each member has an id, a network address (`host:port`), an ed25519 node key, a
/// 48-byte BLS builder key and an optional TEE measurement (zero = none). Nodes read
/// `members()` from any EL and connect only to, and accept envelopes only from, the members
/// it lists.
///
/// Governance: a single owner, set at construction, is the only account that may add,
/// remove or update members. The owner may hand ownership to another non-zero address with
/// `transferOwnership` (one step; a multisig or a governance contract can be the owner, so
/// an M-of-N rule lives there, not here). Nobody else can change anything.
///
/// Rules every change keeps:
/// - ids are assigned in order from 0 and never reused; a removed id stays removed;
/// - no two current members share a node key (a removed member's key may be added again,
///   under a new id);
/// - a node key is not zero, an address is not empty, a BLS key is exactly 48 bytes.
contract Registry {
    /// @notice A member as `member(id)` and `members()` return it.
    struct Member {
        uint32 id;
        string addr;
        bytes32 nodeKey;
        bytes blsKey;
        bytes32 attestation;
        bool active;
    }

    /// @notice The account allowed to change the registry.
    address public owner;

    /// @dev Index = id; removed members keep their slot with `active = false`.
    Member[] private entries;
    /// @dev Node keys held by current members.
    mapping(bytes32 => bool) private nodeKeyTaken;
    /// @dev Number of current members.
    uint32 private active;

    event MemberAdded(uint32 indexed id, bytes32 nodeKey);
    event MemberRemoved(uint32 indexed id);
    event MemberUpdated(uint32 indexed id, bytes32 nodeKey);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice No current member has this id.
    error UnknownMember(uint32 id);
    /// @notice A current member already holds this node key.
    error DuplicateNodeKey(bytes32 nodeKey);
    /// @notice The node key is zero.
    error ZeroNodeKey();
    /// @notice The BLS key is not 48 bytes long.
    error InvalidBlsKey(uint256 length);
    /// @notice The network address is empty.
    error EmptyAddress();
    /// @notice The new owner is the zero address.
    error ZeroOwner();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @param initialOwner The account allowed to change the registry.
    constructor(address initialOwner) {
        if (initialOwner == address(0)) revert ZeroOwner();
        owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    /// @notice Hands the registry to `newOwner`.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroOwner();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Adds a member; returns its id.
    function addMember(string calldata addr, bytes32 nodeKey, bytes calldata blsKey, bytes32 attestation)
        external
        onlyOwner
        returns (uint32 id)
    {
        _check(addr, nodeKey, blsKey);
        if (nodeKeyTaken[nodeKey]) revert DuplicateNodeKey(nodeKey);
        id = uint32(entries.length);
        nodeKeyTaken[nodeKey] = true;
        active += 1;
        entries.push(Member(id, addr, nodeKey, blsKey, attestation, true));
        emit MemberAdded(id, nodeKey);
    }

    /// @notice Removes the current member `id`; its id is never reused.
    function removeMember(uint32 id) external onlyOwner {
        Member storage m = _current(id);
        nodeKeyTaken[m.nodeKey] = false;
        m.active = false;
        active -= 1;
        emit MemberRemoved(id);
    }

    /// @notice Replaces everything but the id of the current member `id`.
    function updateMember(
        uint32 id,
        string calldata addr,
        bytes32 nodeKey,
        bytes calldata blsKey,
        bytes32 attestation
    ) external onlyOwner {
        Member storage m = _current(id);
        _check(addr, nodeKey, blsKey);
        if (nodeKey != m.nodeKey) {
            if (nodeKeyTaken[nodeKey]) revert DuplicateNodeKey(nodeKey);
            nodeKeyTaken[m.nodeKey] = false;
            nodeKeyTaken[nodeKey] = true;
        }
        m.addr = addr;
        m.nodeKey = nodeKey;
        m.blsKey = blsKey;
        m.attestation = attestation;
        emit MemberUpdated(id, nodeKey);
    }

    /// @notice The number of current members.
    function memberCount() external view returns (uint32) {
        return active;
    }

    /// @notice The number of ids assigned so far, removed ones included.
    function nextId() external view returns (uint32) {
        return uint32(entries.length);
    }

    /// @notice Member `id`, current or removed (see `active`); reverts for an id never assigned.
    function member(uint32 id) external view returns (Member memory) {
        if (id >= entries.length) revert UnknownMember(id);
        return entries[id];
    }

    /// @notice All current members, by increasing id.
    function members() external view returns (Member[] memory list) {
        list = new Member[](active);
        uint256 n = 0;
        for (uint256 i = 0; i < entries.length; i++) {
            if (entries[i].active) list[n++] = entries[i];
        }
    }

    function _current(uint32 id) private view returns (Member storage m) {
        if (id >= entries.length || !entries[id].active) revert UnknownMember(id);
        m = entries[id];
    }

    function _check(string calldata addr, bytes32 nodeKey, bytes calldata blsKey) private pure {
        if (bytes(addr).length == 0) revert EmptyAddress();
        if (nodeKey == bytes32(0)) revert ZeroNodeKey();
        if (blsKey.length != 48) revert InvalidBlsKey(blsKey.length);
    }
}
