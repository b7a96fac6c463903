"""draft/offline"""
